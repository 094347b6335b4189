//! The `gatehouse` binary, run as an operator would run it.
