//! The operator's egress policy: which network addresses a guest's outbound requests
//! may reach, above every deployment's allow-list of host names.
//!
//! A deployment grants host names; the name is resolved by the host, and every address
//! it resolves to (and every literal address a guest names) is checked here before a
//! connection is made, so a tenant cannot reach the server's own loopback services,
//! the private network around it or a cloud metadata endpoint by granting itself
//! `127.0.0.1`, a name that resolves there, or a spelling of it (`::ffff:127.0.0.1`,
//! `2130706433`, `0177.0.0.1`). What is denied by default: loopback, private, shared
//! (carrier-grade NAT), link-local (the metadata endpoints among them), multicast,
//! broadcast, unspecified, documentation, benchmarking and reserved addresses, in IPv4
//! and IPv6, with IPv4 embedded in IPv6 (mapped, compatible, NAT64, 6to4) judged as the
//! IPv4 address it carries. The operator opens ranges with `--egress-allow CIDR`.

use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

/// The ranges the operator opened beyond the global internet.
#[derive(Debug, Clone, Default)]
pub struct Egress {
    allowed: Arc<[IpNet]>,
}

/// Why an address may not be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Denied(pub &'static str);

impl std::fmt::Display for Denied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl Egress {
    /// A policy opening `allowed` (CIDR ranges or single addresses) beyond the default.
    pub fn new(allowed: Vec<IpNet>) -> Self {
        Self {
            allowed: allowed.into(),
        }
    }

    /// Parses `--egress-allow` values: `10.1.2.0/24`, `fd00::/8`, or one address.
    pub fn parse(ranges: &[String]) -> Result<Self, String> {
        let mut nets = Vec::with_capacity(ranges.len());
        for r in ranges {
            let r = r.trim();
            let net = r
                .parse::<IpNet>()
                .or_else(|_| r.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    format!("--egress-allow {r:?} is not an address range such as 10.1.2.0/24")
                })?;
            nets.push(net.trunc());
        }
        Ok(Self::new(nets))
    }

    /// The ranges opened by the operator.
    pub fn allowed(&self) -> &[IpNet] {
        &self.allowed
    }

    /// Whether a connection to `ip` may be made; the reason when it may not.
    pub fn check(&self, ip: IpAddr) -> Result<(), Denied> {
        let Some(reason) = special(ip) else {
            return Ok(());
        };
        let plain = canonical(ip);
        if self
            .allowed
            .iter()
            .any(|net| net.contains(&ip) || net.contains(&plain))
        {
            return Ok(());
        }
        Err(Denied(reason))
    }
}

/// An IPv6 address that carries an IPv4 one (mapped, compatible, NAT64, 6to4) as that
/// IPv4 address; anything else as it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => embedded_v4(v6).map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        // ::ffff:a.b.c.d (mapped)
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some(low),
        // ::a.b.c.d (compatible; deprecated, but stacks still route it), not :: or ::1
        [0, 0, 0, 0, 0, 0, hi, lo] if hi != 0 || lo > 1 => Some(low),
        // 64:ff9b::a.b.c.d (NAT64's well-known prefix)
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(low),
        // 2002:AABB:CCDD::/48 (6to4 carries a.b.c.d in its second and third segments)
        [0x2002, hi, lo, ..] => Some(Ipv4Addr::new(
            (hi >> 8) as u8,
            hi as u8,
            (lo >> 8) as u8,
            lo as u8,
        )),
        _ => None,
    }
}

/// What kind of special-purpose address `ip` is, or `None` for a global one.
fn special(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => special_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => special_v4(v4),
            None => special_v6(v6),
        },
    }
}

fn special_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, d] = ip.octets();
    Some(match (a, b, c, d) {
        (169, 254, 169, 254) | (100, 100, 100, 200) | (192, 0, 0, 192) => {
            "a cloud metadata address"
        }
        (127, ..) => "a loopback address",
        (0, ..) => "an unspecified address (this host)",
        (10, ..) | (192, 168, ..) => "a private address",
        (172, b, ..) if (16..32).contains(&b) => "a private address",
        (100, b, ..) if (64..128).contains(&b) => "a shared (carrier-grade NAT) address",
        (169, 254, ..) => "a link-local address",
        (192, 0, 0, _) => "an IETF protocol address",
        (192, 0, 2, _) | (198, 51, 100, _) | (203, 0, 113, _) => "a documentation address",
        (198, b, ..) if b == 18 || b == 19 => "a benchmarking address",
        (255, 255, 255, 255) => "the broadcast address",
        (224..=239, ..) => "a multicast address",
        (240..=255, ..) => "a reserved address",
        _ => return None,
    })
}

fn special_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    if ip.is_unspecified() {
        return Some("an unspecified address (this host)");
    }
    if ip.is_loopback() {
        return Some("a loopback address");
    }
    Some(match s[0] {
        0xff00..=0xffff => "a multicast address",
        0xfe80..=0xfebf => "a link-local address",
        0xfec0..=0xfeff => "a site-local address",
        // fd00:ec2::254 (a metadata endpoint) is one of these.
        0xfc00..=0xfdff => "a private (unique local) address",
        0x2001 if s[1] == 0x0db8 => "a documentation address",
        // Teredo tunnels reach whatever address they carry.
        0x2001 if s[1] == 0 => "a tunnel (Teredo) address",
        0x2001 if s[1] < 0x0200 => "an IETF protocol address",
        0x3fff if s[1] < 0x1000 => "a documentation address",
        0x0064 if s[1] == 0xff9b => "a NAT64 address",
        0x0100 if s[1..4] == [0, 0, 0] => "a discard-only address",
        0x2000..=0x3fff => return None,
        _ => "a reserved address",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn denied(policy: &Egress, ip: &str) -> bool {
        policy.check(ip.parse().unwrap()).is_err()
    }

    #[test]
    fn every_non_global_form_is_denied_by_default() {
        let p = Egress::default();
        for ip in [
            "127.0.0.1",
            "127.255.0.9",
            "0.0.0.0",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "169.254.169.254",
            "169.254.1.1",
            "100.100.100.200",
            "224.0.0.1",
            "239.255.255.250",
            "255.255.255.255",
            "240.0.0.1",
            "192.0.2.1",
            "198.18.0.1",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b::a00:1",
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::",
            "fe80::1",
            "fc00::1",
            "fd00:ec2::254",
            "ff02::1",
            "2001:db8::1",
            "2001:0:4136:e378::1",
            "fec0::1",
            "100::1",
        ] {
            assert!(denied(&p, ip), "{ip} must be denied");
        }
        assert_eq!(
            p.check("169.254.169.254".parse().unwrap()),
            Err(Denied("a cloud metadata address"))
        );
        assert_eq!(
            p.check("::ffff:127.0.0.1".parse().unwrap()),
            Err(Denied("a loopback address"))
        );
    }

    #[test]
    fn global_addresses_are_allowed() {
        let p = Egress::default();
        for ip in [
            "93.184.216.34",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "198.20.0.1",
            "2606:4700:4700::1111",
            "::ffff:1.1.1.1",
            "64:ff9b::101:101",
            "2002:101:101::1",
        ] {
            assert!(!denied(&p, ip), "{ip} must be allowed");
        }
    }

    #[test]
    fn the_operator_opens_ranges_in_every_spelling() {
        let p = Egress::parse(&["10.1.2.0/24".into(), "127.0.0.1".into()]).unwrap();
        assert!(!denied(&p, "10.1.2.3"));
        assert!(denied(&p, "10.1.3.3"));
        assert!(!denied(&p, "127.0.0.1"));
        assert!(!denied(&p, "::ffff:127.0.0.1"));
        assert!(denied(&p, "127.0.0.2"));
        assert!(denied(&p, "::1"));
        let v6 = Egress::parse(&["::1/128".into()]).unwrap();
        assert!(!denied(&v6, "::1"));
        // A host part after the prefix is cut off, as `ip route` does.
        let p = Egress::parse(&["10.1.2.7/24".into()]).unwrap();
        assert_eq!(p.allowed()[0].to_string(), "10.1.2.0/24");
        let e = Egress::parse(&["10.1.2.0/33".into()]).unwrap_err();
        assert!(e.contains("10.1.2.0/33"), "{e}");
        assert!(Egress::parse(&["localhost".into()]).is_err());
    }
}
