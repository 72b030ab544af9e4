//! Which IP address a request comes from.
//!
//! Trust model: the TCP peer is the client, unless the peer is one of
//! `TRUSTED_PROXIES` (a load balancer we run). Only then is `X-Forwarded-For`
//! read, from the right: each proxy appends the address it received the
//! request from, so the right-most hop that is *not* one of our proxies is the
//! client. Anything to its left was written by the client and could be forged,
//! which is why a client can never pick its own rate-limit bucket by sending
//! the header.

use std::cell::RefCell;
use std::net::IpAddr;
use std::rc::Rc;

use actix_web::{HttpMessage, HttpRequest};
use ipnet::IpNet;

/// The client address of the current request, resolved once by
/// `request_context` and kept in the request's extensions (as text: the
/// rate-limit key and the log field).
///
/// Shared text: the rate limiter and the log borrow it without copying it.
#[derive(Debug, Clone)]
pub struct ClientIp(pub Rc<str>);

impl ClientIp {
    /// The address resolved for `req`, or `"unknown"` when there is no peer (in-process tests).
    pub fn of(req: &HttpRequest) -> Rc<str> {
        req.extensions()
            .get::<Self>()
            .map_or_else(|| Rc::from("unknown"), |ip| Rc::clone(&ip.0))
    }

    /// `ip` as text (`"unknown"` for none). Each thread keeps the last
    /// address it formatted: a connection's requests, and a busy client's,
    /// share one string instead of formatting and allocating it per request.
    pub fn new(ip: Option<IpAddr>) -> Self {
        thread_local! {
            static LAST: RefCell<Option<(Option<IpAddr>, Rc<str>)>> = const { RefCell::new(None) };
        }
        LAST.with_borrow_mut(|last| match last {
            Some((seen, text)) if *seen == ip => Self(Rc::clone(text)),
            _ => {
                let text: Rc<str> = ip.map_or_else(|| Rc::from("unknown"), |ip| Rc::from(ip.to_string()));
                *last = Some((ip, Rc::clone(&text)));
                Self(text)
            }
        })
    }
}

fn trusted(ip: IpAddr, proxies: &[IpNet]) -> bool {
    proxies.iter().any(|net| net.contains(&ip))
}

/// The client address given the peer, the `X-Forwarded-For` header values and the trusted proxies.
pub fn resolve(peer: Option<IpAddr>, forwarded_for: &[&str], proxies: &[IpNet]) -> Option<IpAddr> {
    let peer = peer?;
    if !trusted(peer, proxies) {
        return Some(peer);
    }
    let mut client = peer;
    let hops = forwarded_for
        .iter()
        .flat_map(|h| h.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    for hop in hops.into_iter().rev() {
        match hop.parse::<IpAddr>() {
            Ok(ip) => {
                client = ip;
                if !trusted(ip, proxies) {
                    break;
                }
            }
            // A garbled hop: nothing left of it can be trusted.
            Err(_) => break,
        }
    }
    Some(client)
}

/// The client address of `req` (see the module docs).
pub fn client_ip(req: &HttpRequest, proxies: &[IpNet]) -> Option<IpAddr> {
    let peer = req.peer_addr().map(|a| a.ip());
    if proxies.is_empty() {
        return peer;
    }
    let headers: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .collect();
    resolve(peer, &headers, proxies)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn proxies() -> Vec<IpNet> {
        vec!["10.0.0.0/8".parse().unwrap()]
    }

    #[test]
    fn a_thread_formats_a_repeated_address_once() {
        let first = ClientIp::new(Some(ip("203.0.113.9")));
        let again = ClientIp::new(Some(ip("203.0.113.9")));
        assert_eq!(&*first.0, "203.0.113.9");
        assert!(Rc::ptr_eq(&first.0, &again.0), "the same text, not a new string");
        let other = ClientIp::new(Some(ip("2001:db8::1")));
        assert_eq!(&*other.0, "2001:db8::1");
        assert_eq!(&*ClientIp::new(None).0, "unknown");
        assert_eq!(&*ClientIp::new(Some(ip("203.0.113.9"))).0, "203.0.113.9");
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        assert_eq!(
            resolve(Some(ip("203.0.113.9")), &["1.1.1.1"], &proxies()),
            Some(ip("203.0.113.9"))
        );
    }

    #[test]
    fn behind_a_trusted_proxy_the_right_most_untrusted_hop_is_the_client() {
        let got = resolve(Some(ip("10.0.0.2")), &["6.6.6.6, 198.51.100.7, 10.0.0.5"], &proxies());
        assert_eq!(got, Some(ip("198.51.100.7")), "the forged left-most entry is ignored");
        let split_headers = resolve(Some(ip("10.0.0.2")), &["6.6.6.6", "198.51.100.7"], &proxies());
        assert_eq!(split_headers, Some(ip("198.51.100.7")));
    }

    #[test]
    fn missing_or_garbled_headers_fall_back_safely() {
        assert_eq!(resolve(Some(ip("10.0.0.2")), &[], &proxies()), Some(ip("10.0.0.2")));
        assert_eq!(
            resolve(Some(ip("10.0.0.2")), &["1.1.1.1, garbage"], &proxies()),
            Some(ip("10.0.0.2"))
        );
        assert_eq!(resolve(None, &["1.1.1.1"], &proxies()), None);
    }
}
