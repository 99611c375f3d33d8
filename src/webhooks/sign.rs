//! The signature on every request (Stripe's scheme):
//! `X-Buzon-Signature: t=UNIX_SECONDS,v1=HEX`, where HEX is the
//! HMAC-SHA256, keyed with the endpoint's secret, of `"{t}.{body}"`. The
//! timestamp is signed with the body, so a receiver can refuse an old
//! request replayed.
//!
//! The HMAC is `thread::hmac_sha256` (the `hmac` crate), the one the
//! Message-IDs are signed with.

/// The header's value for `body` sent at `unix_seconds`.
pub fn signature(secret: &[u8], unix_seconds: i64, body: &[u8]) -> String {
    format!(
        "t={unix_seconds},v1={}",
        hex(&mac(secret, unix_seconds, body))
    )
}

fn mac(secret: &[u8], unix_seconds: i64, body: &[u8]) -> [u8; 32] {
    let mut signed = format!("{unix_seconds}.").into_bytes();
    signed.extend_from_slice(body);
    crate::thread::hmac_sha256(secret, &signed)
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231 test case 2 through the scheme: the HMAC of "{t}.{body}".
    #[test]
    fn signs_the_timestamp_and_the_body() {
        let sig = signature(b"Jefe", 1_700_000_000, b"{}");
        let t = sig.strip_prefix("t=1700000000,v1=").unwrap();
        assert_eq!(t.len(), 64);
        assert_eq!(
            hex(&crate::thread::hmac_sha256(
                b"Jefe",
                b"what do ya want for nothing?"
            )),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Python's hmac.new(b"Jefe", b"1700000000.{}", hashlib.sha256), as
        // the README's receiver computes it.
        assert_eq!(
            t,
            "d3793e2b4103edfbd98cc19591832f5fad701d413db9fcae0ae7dab8184ed207"
        );
        assert_ne!(sig, signature(b"Jefe", 1_700_000_001, b"{}"));
        assert_ne!(sig, signature(b"other", 1_700_000_000, b"{}"));
    }
}
