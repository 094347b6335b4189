//! Device cookies (OWASP, "Slow Down Online Guessing Attacks with Device Cookies"). After a
//! successful login the browser gets a cookie, signed with a server secret, that names the
//! account and a random device id. A later login to that account from a browser that presents
//! it is judged by that device's own failures, so guessing from elsewhere cannot lock the
//! owner out of a browser they have signed in with before.
//!
//! The value is `{user id}.{device id}.{issued at}.{tag}`: the tag is an HMAC-SHA-256 of the
//! rest under the key, so the cookie cannot be forged or moved to another account, and it is
//! honoured for [`DEVICE_COOKIE_LIFETIME`] after it was issued.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand_core::{OsRng, RngCore};
use sha2::Sha256;

use crate::domain::UserId;

/// How long a device stays known after its last successful login (each login renews it).
pub const DEVICE_COOKIE_LIFETIME: Duration = Duration::from_secs(180 * 24 * 60 * 60);

/// Keeps what separates these MACs from any other made with the same primitive.
const CONTEXT: &[u8] = b"gatehouse device cookie v1\0";

/// A device that signed in to `user_id` before, recognised by its cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub user_id: UserId,
    /// Random, unique to the cookie: what the device's failures are counted under.
    pub id: String,
}

/// Issues and recognises device cookies.
#[derive(Clone)]
pub struct DeviceCookies {
    key: [u8; 32],
}

impl DeviceCookies {
    pub fn new(key: [u8; 32]) -> DeviceCookies {
        DeviceCookies { key }
    }

    /// A new cookie value for a device that has just signed in to `user_id` at `now` (Unix
    /// seconds).
    pub fn issue(&self, user_id: UserId, now: i64) -> String {
        let mut id = [0u8; 16];
        OsRng.fill_bytes(&mut id);
        let body = format!("{user_id}.{}.{now}", URL_SAFE_NO_PAD.encode(id));
        let tag = URL_SAFE_NO_PAD.encode(self.mac(&body).finalize().into_bytes());
        format!("{body}.{tag}")
    }

    /// The device a cookie value names, if this server issued it and it has not expired.
    pub fn recognise(&self, value: &str, now: i64) -> Option<Device> {
        let (body, tag) = value.rsplit_once('.')?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        self.mac(body).verify_slice(&tag).ok()?;
        let mut parts = body.split('.');
        let (user_id, id, issued_at) = (parts.next()?, parts.next()?, parts.next()?);
        let issued_at: i64 = issued_at.parse().ok()?;
        let lifetime = DEVICE_COOKIE_LIFETIME.as_secs() as i64;
        if parts.next().is_some() || issued_at > now || now - issued_at >= lifetime {
            return None;
        }
        Some(Device {
            user_id: user_id.parse().ok()?,
            id: id.to_owned(),
        })
    }

    fn mac(&self, body: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key");
        mac.update(CONTEXT);
        mac.update(body.as_bytes());
        mac
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn an_issued_cookie_names_its_account_and_a_device_of_its_own() {
        let devices = DeviceCookies::new([3; 32]);
        let user = UserId::new();
        let one = devices.issue(user, NOW);
        let two = devices.issue(user, NOW);
        let first = devices.recognise(&one, NOW + 10).unwrap();
        assert_eq!(first.user_id, user);
        assert_ne!(first.id, devices.recognise(&two, NOW).unwrap().id);
        assert!(one
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)));
    }

    #[test]
    fn forged_moved_expired_and_foreign_cookies_are_not_recognised() {
        let devices = DeviceCookies::new([3; 32]);
        let (user, other) = (UserId::new(), UserId::new());
        let value = devices.issue(user, NOW);
        let moved = value.replacen(&user.to_string(), &other.to_string(), 1);
        let lifetime = DEVICE_COOKIE_LIFETIME.as_secs() as i64;
        assert_eq!(devices.recognise(&moved, NOW), None, "another account");
        assert_eq!(devices.recognise(&value, NOW + lifetime), None, "expired");
        assert_eq!(devices.recognise(&value, NOW - 1), None, "from the future");
        let foreign = DeviceCookies::new([4; 32]).issue(user, NOW);
        assert_eq!(devices.recognise(&foreign, NOW), None, "another key");
        for garbage in ["", ".", "a.b.c.d", "a.b.c.d.e", &value[..value.len() - 2]] {
            assert_eq!(devices.recognise(garbage, NOW), None, "{garbage}");
        }
    }
}
