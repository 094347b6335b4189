//! Types that can only hold valid values: parse at the edge, trust inside.

mod audit;
mod client;
mod device;
mod email;
mod factors;
mod listing;
mod local_path;
mod password;
mod text;
mod user;

pub use audit::{AuditEvent, AuditFilter, AuditRecord, Party};
pub use client::{
    Client, ClientId, ClientName, IdTokenAlgorithm, InvalidClient, InvalidRedirectUri, RedirectUri,
    Scopes,
};
pub use device::device_name;
pub use email::{
    mask as mask_email, normalize as normalize_email, skeleton_of as email_skeleton, Email,
    InvalidEmail,
};
pub use factors::{AuthMethods, InvalidPasskeyName, PasskeyName, SecondFactor};
pub use listing::{Boundary, Listing, Page, Total, COUNT_LIMIT};
pub use local_path::LocalPath;
pub use password::{
    is_plausible as is_plausible_password, normalize as normalize_password, Password,
    PasswordPolicy, PolicyViolation, MAX_LEN as PASSWORD_MAX_LEN, MIN_LEN as PASSWORD_MIN_LEN,
};
pub use text::printable;
pub use user::{LiveSession, User, UserFilter, UserId, UserRead, UserSort};
