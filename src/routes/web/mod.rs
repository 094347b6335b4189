//! The web kit: what the JSON API and the pages share on the HTTP side of the house. Who is
//! asking (extractors, client address, cookie renewal), CSRF, cookies, the middleware, the
//! error answers, and the frame, forms and pager of the pages. Nothing below `routes` knows
//! HTTP.

pub mod client;
pub mod connections;
pub mod cookies;
pub mod csrf;
mod error_page;
pub mod errors;
pub mod extractors;
pub mod fallback;
pub mod flash;
pub mod forms;
pub mod middleware;
pub mod page;
pub mod pager;
pub mod renewal;

pub use errors::{ApiError, FieldError, OAuthError, PageError};
pub use extractors::{
    AuthUser, Authenticated, Caller, PageSuperuser, SignedIn, Superuser, Visitor,
};
pub use forms::{email_error, next_or, CsrfForm, FieldErrors, FormError, NoFields};
pub use page::{
    display_date, display_time, format_time, render, see_other, signed_in_redirect,
    signed_out_redirect, Layout, When,
};
pub use pager::{boundary_param, PageQuery, Pager};
