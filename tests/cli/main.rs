//! The `gatehouse` binary, run as an operator would run it.
//!
//! Every test runs the real executable in a fresh temporary directory (so no `.env` of the
//! repository is read) with an empty environment plus only the variables it means. Served
//! processes are killed by a guard when the test ends, pass or fail.

mod harness;

mod clients;
mod crash;
mod create_superuser;
mod help;
mod import;
mod import_fastapi_users;
mod keys;
mod limits;
mod migrate;
mod serve;
mod signals;
mod storage;
