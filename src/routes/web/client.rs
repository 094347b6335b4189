//! Where a request comes from, the `Origin` of a service call: the client's address
//! (believing `X-Forwarded-For` only from configured proxies) and its user agent. Throttling
//! keys on the first, the audit log records both.
//!
//! Addresses are canonical: on a dual-stack listener an IPv4 client arrives as
//! `::ffff:a.b.c.d`, and is treated (bucketed, matched against proxies, audited, logged) as
//! the IPv4 address it is.

use std::future::{ready, Ready};
use std::net::IpAddr;

use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};
use ipnet::IpNet;

use super::cookies::CookiePolicy;
use crate::services::context::{DeviceCookie, Origin};
use crate::state::AppState;

/// Where a request comes from: its client address, user agent and device cookie.
pub fn origin_of(req: &HttpRequest, state: &AppState) -> Origin {
    Origin {
        ip: client_address(req, state.throttle.trusted_proxies()),
        device_cookie: req
            .cookie(CookiePolicy::of(state).device_name())
            .map(|cookie| DeviceCookie(cookie.value().to_owned()))
            .filter(|cookie| !cookie.0.is_empty()),
        user_agent: req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|agent| agent.to_str().ok())
            .map(|agent| agent.chars().take(256).collect()),
    }
}

impl FromRequest for Origin {
    type Error = actix_web::Error;
    type Future = Ready<Result<Origin, actix_web::Error>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let state = req
            .app_data::<web::Data<AppState>>()
            .expect("AppState is registered");
        ready(Ok(origin_of(req, state)))
    }
}

/// The client's address, canonical, as [`client_ip`] finds it.
pub fn client_address(req: &HttpRequest, trusted_proxies: &[IpNet]) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    let forwarded_for = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|value| value.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    Some(client_ip(peer, &forwarded_for, trusted_proxies))
}

/// What a trusted proxy says about the request it forwarded: the scheme and host the client
/// used. From anyone else, `None`: those headers are written by whoever sends them.
pub struct Forwarded {
    pub proto: Option<String>,
    pub host: Option<String>,
}

impl Forwarded {
    /// Reads `Forwarded` (RFC 7239: `proto=` and `host=` of its first element, the one the
    /// proxy nearest the client wrote), or else `X-Forwarded-Proto` and `X-Forwarded-Host`
    /// (their first value), when the peer is one of `trusted_proxies`.
    pub fn of(req: &HttpRequest, trusted_proxies: &[IpNet]) -> Forwarded {
        let peer_trusted = req
            .peer_addr()
            .is_some_and(|peer| is_trusted(peer.ip().to_canonical(), trusted_proxies));
        if !peer_trusted {
            return Forwarded {
                proto: None,
                host: None,
            };
        }
        let first = |name: &str| {
            let value = req.headers().get(name)?.to_str().ok()?;
            let first = value.split(',').next()?.trim();
            (!first.is_empty()).then(|| first.to_owned())
        };
        let mut forwarded = Forwarded {
            proto: None,
            host: None,
        };
        if let Some(element) = first("forwarded") {
            for pair in element.split(';') {
                let Some((name, value)) = pair.split_once('=') else {
                    continue;
                };
                let value = value.trim().trim_matches('"').to_owned();
                match name.trim().to_ascii_lowercase().as_str() {
                    "proto" => forwarded.proto = Some(value),
                    "host" => forwarded.host = Some(value),
                    _ => {}
                }
            }
        }
        forwarded.proto = forwarded.proto.or_else(|| first("x-forwarded-proto"));
        forwarded.host = forwarded.host.or_else(|| first("x-forwarded-host"));
        forwarded.proto = forwarded.proto.map(|proto| proto.to_ascii_lowercase());
        forwarded
    }
}

/// The client's address. A proxy we trust appends the address it got the request from to
/// `X-Forwarded-For`, so the list is read from the right, past our own proxies; the first
/// address that is not one of them is the client. Anything to its left was written by the
/// client and proves nothing.
pub fn client_ip(peer: IpAddr, forwarded_for: &str, trusted_proxies: &[IpNet]) -> IpAddr {
    let peer = peer.to_canonical();
    if !is_trusted(peer, trusted_proxies) {
        return peer;
    }
    let mut client = peer;
    for hop in forwarded_for.rsplit(',') {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) => {
                let ip = ip.to_canonical();
                client = ip;
                if !is_trusted(ip, trusted_proxies) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    client
}

/// Whether `ip` (canonical) is one of our proxies.
fn is_trusted(ip: IpAddr, trusted_proxies: &[IpNet]) -> bool {
    trusted_proxies.iter().any(|net| net.contains(&ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn ip(raw: &str) -> IpAddr {
        raw.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let proxies = nets(&["10.0.0.0/8"]);
        assert_eq!(
            client_ip(ip("203.0.113.9"), "1.2.3.4", &proxies),
            ip("203.0.113.9")
        );
        assert_eq!(client_ip(ip("203.0.113.9"), "", &[]), ip("203.0.113.9"));
    }

    #[test]
    fn a_trusted_proxy_names_the_client() {
        let proxies = nets(&["10.0.0.0/8"]);
        assert_eq!(
            client_ip(ip("10.0.0.2"), "198.51.100.7", &proxies),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn spoofed_entries_left_of_the_client_are_ignored() {
        let proxies = nets(&["10.0.0.0/8"]);
        let header = "1.1.1.1, 198.51.100.7, 10.0.0.5";
        assert_eq!(
            client_ip(ip("10.0.0.2"), header, &proxies),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn garbage_stops_the_walk_at_the_last_good_hop() {
        let proxies = nets(&["10.0.0.0/8"]);
        assert_eq!(
            client_ip(ip("10.0.0.2"), "nonsense", &proxies),
            ip("10.0.0.2")
        );
        assert_eq!(
            client_ip(ip("10.0.0.2"), "198.51.100.7, junk, 10.0.0.9", &proxies),
            ip("10.0.0.9")
        );
        assert_eq!(client_ip(ip("10.0.0.2"), "", &proxies), ip("10.0.0.2"));
    }

    #[test]
    fn ipv4_mapped_addresses_are_ipv4() {
        let proxies = nets(&["10.0.0.0/8"]);
        assert_eq!(
            client_ip(ip("::ffff:203.0.113.9"), "", &[]),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_ip(ip("::ffff:10.0.0.2"), "::ffff:198.51.100.7", &proxies),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_ip(
                ip("::ffff:10.0.0.2"),
                "198.51.100.7, ::ffff:10.0.0.9",
                &proxies
            ),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn only_a_trusted_proxy_says_what_the_client_used() {
        use actix_web::test::TestRequest;
        let proxies = nets(&["10.0.0.0/8"]);
        let request = |peer: &str, headers: &[(&str, &str)]| {
            let mut request = TestRequest::get().peer_addr(format!("{peer}:443").parse().unwrap());
            for header in headers {
                request = request.insert_header(*header);
            }
            request.to_http_request()
        };
        let x_forwarded = [
            ("x-forwarded-proto", "HTTPS"),
            ("x-forwarded-host", "auth.example.com, inner.local"),
        ];
        let trusted = Forwarded::of(&request("10.0.0.2", &x_forwarded), &proxies);
        assert_eq!(trusted.proto.as_deref(), Some("https"));
        assert_eq!(trusted.host.as_deref(), Some("auth.example.com"));
        let mapped = Forwarded::of(&request("[::ffff:10.0.0.2]", &x_forwarded), &proxies);
        assert_eq!(mapped.proto.as_deref(), Some("https"));
        let stranger = Forwarded::of(&request("203.0.113.9", &x_forwarded), &proxies);
        assert_eq!((stranger.proto, stranger.host), (None, None));

        let rfc7239 = [(
            "forwarded",
            "for=198.51.100.7;proto=http;host=\"a.example\", for=10.0.0.3;proto=https",
        )];
        let parsed = Forwarded::of(&request("10.0.0.2", &rfc7239), &proxies);
        assert_eq!(parsed.proto.as_deref(), Some("http"));
        assert_eq!(parsed.host.as_deref(), Some("a.example"));
    }

    #[test]
    fn ipv6_proxies_and_clients() {
        let proxies = nets(&["fd00::/8"]);
        assert_eq!(
            client_ip(ip("fd00::1"), "2001:db8::42", &proxies),
            ip("2001:db8::42")
        );
    }
}
