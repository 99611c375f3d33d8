//! Whether the receiving server vouched for the sender: the topmost
//! `Authentication-Results` header (RFC 8601) added by the server an admin
//! trusts (`[security] trusted_authserv_id`) must say `dmarc=pass`, or
//! `dkim=pass` for a domain aligned with From. Headers from any other
//! server are ignored: anyone can write one. Pure.

/// Checks the headers of a mail (as written, topmost first) for `From`'s
/// domain.
pub fn vouched(headers: &[(String, String)], authserv_id: &str, from_domain: &str) -> bool {
    let Some(results) = headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("authentication-results"))
        .map(|(_, value)| value)
        .find(|v| authserv(v).eq_ignore_ascii_case(authserv_id))
    else {
        return false;
    };
    let from_domain = from_domain.to_ascii_lowercase();
    let aligned = |d: &str| {
        let d = d
            .trim_matches(|c| c == '"' || c == ';')
            .to_ascii_lowercase();
        from_domain == d || from_domain.ends_with(&format!(".{d}"))
    };
    results.split(';').skip(1).any(|method| {
        let words: Vec<&str> = method.split_whitespace().collect();
        let result = words
            .first()
            .map(|w| w.to_ascii_lowercase())
            .unwrap_or_default();
        match result.as_str() {
            "dmarc=pass" => true,
            "dkim=pass" => words
                .iter()
                .filter_map(|w| {
                    w.strip_prefix("header.d=")
                        .or_else(|| w.strip_prefix("header.i=@"))
                })
                .any(aligned),
            _ => false,
        }
    })
}

/// The authserv-id: the first word of the header's value.
fn authserv(value: &str) -> &str {
    value
        .trim()
        .split(|c: char| c == ';' || c.is_whitespace())
        .next()
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::vouched;

    fn h(values: &[&str]) -> Vec<(String, String)> {
        values
            .iter()
            .map(|v| ("Authentication-Results".to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn only_the_trusted_servers_verdict_counts() {
        let pass = "mx.tupatrimonio.example; spf=pass smtp.mailfrom=tupatrimonio.example; dkim=pass header.d=tupatrimonio.example; dmarc=pass header.from=tupatrimonio.example";
        assert!(vouched(
            &h(&[pass]),
            "mx.tupatrimonio.example",
            "tupatrimonio.example"
        ));
        let dkim_only = "mx.tupatrimonio.example; dkim=pass header.d=tupatrimonio.example";
        assert!(vouched(
            &h(&[dkim_only]),
            "mx.tupatrimonio.example",
            "tupatrimonio.example"
        ));
        // DKIM for another domain is not aligned.
        let other = "mx.tupatrimonio.example; dkim=pass header.d=gmail.com; dmarc=fail";
        assert!(!vouched(
            &h(&[other]),
            "mx.tupatrimonio.example",
            "tupatrimonio.example"
        ));
        // A forger's own header, from another authserv-id, counts for nothing.
        let forged = "mx.atacante.example; dmarc=pass header.from=tupatrimonio.example";
        assert!(!vouched(
            &h(&[forged]),
            "mx.tupatrimonio.example",
            "tupatrimonio.example"
        ));
        assert!(!vouched(
            &h(&[]),
            "mx.tupatrimonio.example",
            "tupatrimonio.example"
        ));
        // The trusted server's failure wins over a forged pass below it.
        let fail = "mx.tupatrimonio.example; dmarc=fail header.from=tupatrimonio.example";
        assert!(!vouched(
            &h(&[fail, forged]),
            "mx.tupatrimonio.example",
            "tupatrimonio.example"
        ));
    }
}
