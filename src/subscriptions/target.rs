//! Which webhook URLs the server may POST to (checked when a subscription is created and
//! again before every delivery, so nothing is ever connected to otherwise):
//! - `http:` only to `localhost` or `127.x.x.x`;
//! - otherwise `https:`, but not to `localhost`, not to IPv4 addresses in 0/8, 10/8,
//!   127/8, 169.254/16, 172.16/12 or 192.168/16, and not to IPv6 literals;
//! - with `loopback_only` (local mode), only the `http:` loopback targets.

use std::net::Ipv4Addr;

use url::{Host, Url};

/// Why a URL is refused (the message of `WEBHOOK_URL_REJECTED`).
pub fn check(raw: &str, loopback_only: bool) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|_| "webhook.url must be a valid URL".to_string())?;
    let host = url.host().ok_or("webhook.url must name a host")?;
    let loopback = match &host {
        Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        Host::Ipv4(ip) => ip.octets()[0] == 127,
        Host::Ipv6(_) => false,
    };
    match url.scheme() {
        "http" if loopback => return Ok(url),
        "http" => {
            return Err("http webhook URLs are only allowed for localhost or 127.0.0.x".into())
        }
        "https" => {}
        _ => return Err("webhook.url must use https".into()),
    }
    if loopback_only {
        return Err(
            "this server only delivers webhooks to http://localhost or http://127.x.x.x".into(),
        );
    }
    match host {
        Host::Domain(d) if d.eq_ignore_ascii_case("localhost") => {
            Err("localhost webhook URLs must use http for dev".into())
        }
        Host::Ipv4(ip) if private_or_link_local(ip) => {
            Err("webhook.url must not target private or link-local hosts".into())
        }
        Host::Ipv6(_) => Err("IPv6 webhook hosts are not accepted".into()),
        _ => Ok(url),
    }
}

fn private_or_link_local(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    a == 10
        || a == 127
        || a == 0
        || (a == 172 && (16..=31).contains(&b))
        || (a == 192 && b == 168)
        || (a == 169 && b == 254)
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn http_only_to_loopback() {
        assert!(check("http://localhost:3000/hook", false).is_ok());
        assert!(check("http://127.0.0.1:9/h", false).is_ok());
        assert!(check("http://127.8.9.10/h", false).is_ok());
        assert!(check("http://10.0.0.1/hook", false).is_err());
        assert!(check("http://example.com/hook", false).is_err());
        assert!(check("http://[::1]/hook", false).is_err());
    }

    #[test]
    fn https_not_to_private_ranges_localhost_or_ipv6() {
        assert!(check("https://example.com/hook", false).is_ok());
        assert!(check("https://8.8.8.8/hook", false).is_ok());
        for bad in [
            "https://localhost/h",
            "https://10.1.2.3/h",
            "https://127.0.0.1/h",
            "https://0.0.0.0/h",
            "https://172.16.0.1/h",
            "https://172.31.255.255/h",
            "https://192.168.1.1/h",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/h",
            "https://[fe80::1]/h",
            "https://0x7f000001/h",
            "ftp://example.com/h",
            "not a url",
        ] {
            assert!(check(bad, false).is_err(), "{bad}");
        }
        assert!(check("https://172.32.0.1/h", false).is_ok());
    }

    #[test]
    fn loopback_only_keeps_just_the_http_loopback_targets() {
        assert!(check("http://127.0.0.1:9/h", true).is_ok());
        assert!(check("http://localhost/h", true).is_ok());
        assert!(check("https://example.com/hook", true).is_err());
    }
}
