//! Who the client is when a reverse proxy stands in front: the proxy's
//! address is the TCP peer, and the client's is in `X-Forwarded-For`. That
//! header is whatever the sender wrote, so it is believed only from the
//! proxies named in `TRUSTED_PROXIES`; from anyone else the peer address is
//! the client, or one client could pose as thousands and dodge the
//! per-address limits.

use std::net::IpAddr;
use std::str::FromStr;

/// One entry of `TRUSTED_PROXIES`: an address, or a network in CIDR form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    base: IpAddr,
    prefix_len: u8,
}

impl Network {
    /// Whether `address` lies in this network. An IPv4 address mapped into
    /// IPv6 (`::ffff:a.b.c.d`) counts as the IPv4 address.
    pub fn contains(&self, address: IpAddr) -> bool {
        match (self.base, canonical(address)) {
            (IpAddr::V4(base), IpAddr::V4(address)) => same_prefix(
                base.to_bits().into(),
                address.to_bits().into(),
                32,
                self.prefix_len,
            ),
            (IpAddr::V6(base), IpAddr::V6(address)) => {
                same_prefix(base.to_bits(), address.to_bits(), 128, self.prefix_len)
            }
            _ => false,
        }
    }
}

fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    }
}

fn same_prefix(base: u128, address: u128, width: u8, prefix_len: u8) -> bool {
    if prefix_len == 0 {
        return true;
    }
    let ignored = u32::from(width - prefix_len);
    (base >> ignored) == (address >> ignored)
}

impl FromStr for Network {
    type Err = String;

    /// `10.0.0.1`, `10.0.0.0/8`, `::1`, `fd00::/8`.
    fn from_str(text: &str) -> Result<Network, String> {
        let text = text.trim();
        let (address, prefix_len) = match text.split_once('/') {
            Some((address, len)) => (address, Some(len)),
            None => (text, None),
        };
        let base = canonical(
            address
                .parse::<IpAddr>()
                .map_err(|_| format!("{text:?} is not an IP address or network"))?,
        );
        let width = if base.is_ipv4() { 32 } else { 128 };
        let prefix_len = match prefix_len {
            None => width,
            Some(len) => len
                .parse::<u8>()
                .ok()
                .filter(|len| *len <= width)
                .ok_or_else(|| format!("{text:?} has a bad prefix length"))?,
        };
        Ok(Network { base, prefix_len })
    }
}

/// The proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    networks: Vec<Network>,
}

impl TrustedProxies {
    /// Trusts the proxies in `networks` (`TRUSTED_PROXIES`).
    pub fn new(networks: Vec<Network>) -> TrustedProxies {
        TrustedProxies { networks }
    }

    /// Whether no proxy is trusted: then the TCP peer is always the client.
    pub fn is_empty(&self) -> bool {
        self.networks.is_empty()
    }

    /// Whether a peer at `address` is a trusted proxy.
    pub fn trusts(&self, address: IpAddr) -> bool {
        self.networks
            .iter()
            .any(|network| network.contains(address))
    }

    /// The client behind `peer`: walking `X-Forwarded-For` from the right
    /// (the hop nearest to us), the first address that is not one of our
    /// proxies. Entries further left were written by whoever is beyond
    /// that, and are not believed. A missing or unreadable entry stops the
    /// walk at the last address known. `forwarded_for` holds the values of
    /// every `X-Forwarded-For` header, in order.
    pub fn client_address<'a>(
        &self,
        peer: IpAddr,
        forwarded_for: impl IntoIterator<Item = &'a [u8]>,
    ) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let values: Vec<&[u8]> = forwarded_for.into_iter().collect();
        let mut client = peer;
        for entry in values
            .iter()
            .rev()
            .flat_map(|value| value.rsplit(|byte| *byte == b','))
        {
            let Some(address) = parse_entry(entry) else {
                return client;
            };
            client = address;
            if !self.trusts(address) {
                return client;
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: an address, IPv6 perhaps in brackets, with
/// or without a port as some proxies write it.
fn parse_entry(entry: &[u8]) -> Option<IpAddr> {
    let entry = std::str::from_utf8(entry).ok()?.trim();
    if let Ok(address) = entry.parse::<IpAddr>() {
        return Some(canonical(address));
    }
    if let Ok(socket) = entry.parse::<std::net::SocketAddr>() {
        return Some(canonical(socket.ip()));
    }
    let unbracketed = entry.strip_prefix('[')?.strip_suffix(']')?;
    unbracketed.parse::<IpAddr>().ok().map(canonical)
}

impl FromStr for TrustedProxies {
    type Err = String;

    /// A comma-separated list of addresses and networks.
    fn from_str(list: &str) -> Result<TrustedProxies, String> {
        list.split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(Network::from_str)
            .collect::<Result<Vec<_>, _>>()
            .map(TrustedProxies::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn networks_contain_what_their_prefix_says() {
        let net: Network = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains(ip("10.1.200.3")));
        assert!(!net.contains(ip("10.2.0.1")));
        assert!(net.contains(ip("::ffff:10.1.0.9")));
        let one: Network = "192.168.0.7".parse().unwrap();
        assert!(one.contains(ip("192.168.0.7")));
        assert!(!one.contains(ip("192.168.0.8")));
        let v6: Network = "fd00::/8".parse().unwrap();
        assert!(v6.contains(ip("fd12::1")));
        assert!(!v6.contains(ip("fe80::1")));
        assert!(
            "0.0.0.0/0"
                .parse::<Network>()
                .unwrap()
                .contains(ip("8.8.8.8"))
        );
        assert!("10.0.0.0/33".parse::<Network>().is_err());
        assert!("proxy.local".parse::<Network>().is_err());
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxies: TrustedProxies = "10.0.0.1, 10.0.1.0/24".parse().unwrap();
        let header = [&b"203.0.113.9, 10.0.1.5"[..]];
        // From a proxy: skip our own proxies, take the first other hop.
        assert_eq!(
            proxies.client_address(ip("10.0.0.1"), header),
            ip("203.0.113.9")
        );
        // From anyone else the header is ignored.
        assert_eq!(
            proxies.client_address(ip("198.51.100.2"), header),
            ip("198.51.100.2")
        );
        // A forged entry left of the real client is not believed.
        let forged = [&b"1.2.3.4, 203.0.113.9"[..]];
        assert_eq!(
            proxies.client_address(ip("10.0.0.1"), forged),
            ip("203.0.113.9")
        );
        // Several headers are one list; ports and brackets are allowed.
        let split = [&b"1.2.3.4"[..], b"[2001:db8::1]:443"];
        assert_eq!(
            proxies.client_address(ip("10.0.0.1"), split),
            ip("2001:db8::1")
        );
        // Garbage stops the walk at the proxy itself.
        assert_eq!(
            proxies.client_address(ip("10.0.0.1"), [&b"not an address"[..]]),
            ip("10.0.0.1")
        );
        assert_eq!(proxies.client_address(ip("10.0.0.1"), []), ip("10.0.0.1"));
    }
}
