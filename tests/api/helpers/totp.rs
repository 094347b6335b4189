//! Authenticator-app codes computed independently of the server's `totp-rs`: RFC 4226's
//! HOTP over RFC 2104's HMAC, written out here from the RFCs with SHA-1 from the `sha1` crate.
//! The API and browser tests compute every code they send with it.

use sha1::{Digest, Sha1};

/// The 6-digit code of `secret` (base32, as the server shows it) for the step holding `time`.
pub fn code_at(secret_base32: &str, time: u64) -> String {
    let key = base32_decode(secret_base32);
    let counter = (time / 30).to_be_bytes();
    let mac = hmac_sha1(&key, &counter);
    let offset = usize::from(mac[19] & 0x0f);
    let binary = u32::from_be_bytes([
        mac[offset],
        mac[offset + 1],
        mac[offset + 2],
        mac[offset + 3],
    ]) & 0x7fff_ffff;
    format!("{:06}", binary % 1_000_000)
}

/// The code for now.
pub fn code_now(secret_base32: &str) -> String {
    code_at(secret_base32, now())
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn hmac_sha1(key: &[u8], message: &[u8]) -> [u8; 20] {
    const BLOCK: usize = 64;
    let mut padded = [0u8; BLOCK];
    if key.len() > BLOCK {
        padded[..20].copy_from_slice(&Sha1::digest(key));
    } else {
        padded[..key.len()].copy_from_slice(key);
    }
    let inner: Vec<u8> = padded
        .iter()
        .map(|b| b ^ 0x36)
        .chain(message.iter().copied())
        .collect();
    let inner_hash = Sha1::digest(&inner);
    let outer: Vec<u8> = padded
        .iter()
        .map(|b| b ^ 0x5c)
        .chain(inner_hash.iter().copied())
        .collect();
    Sha1::digest(&outer).into()
}

/// RFC 4648 base32 (upper or lower case, padding optional).
fn base32_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bits: u64 = 0;
    let mut count = 0;
    let mut out = Vec::new();
    for c in text.trim_end_matches('=').bytes() {
        let value = ALPHABET
            .iter()
            .position(|&a| a == c.to_ascii_uppercase())
            .expect("a base32 secret") as u64;
        bits = (bits << 5) | value;
        count += 5;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    out
}

#[test]
fn matches_rfc_6238_appendix_b() {
    // "12345678901234567890" in base32; the RFC's 8-digit codes end in these 6.
    let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
    assert_eq!(code_at(secret, 59), "287082");
    assert_eq!(code_at(secret, 1_111_111_109), "081804");
    assert_eq!(code_at(secret, 2_000_000_000), "279037");
}
