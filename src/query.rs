//! Percent-decoding and query splitting: what the simulator reads requests with,
//! and what the HTTP layer (`/probe?source=`, the live lookup's path segments) and
//! the Huawei signer (its canonical URI decodes the path before re-encoding it) need
//! too. It lives here, not in `provider` or `sim`, because all three use it.

/// Decode `%XX` sequences (and, when `plus_is_space`, `+` as space) into UTF-8,
/// replacing invalid sequences.
pub fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Split a raw query string into decoded (name, value) pairs.
pub fn parse_query(query: &str, plus_is_space: bool) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (
                percent_decode(k, plus_is_space),
                percent_decode(v, plus_is_space),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_reverses_python_quote_and_splits_queries() {
        assert_eq!(percent_decode("a%20b%2A+c%C3%A9", true), "a b* cé");
        assert_eq!(percent_decode("a+b%zz%", false), "a+b%zz%");
        let q = parse_query("b=2&a=x%2By&c=&d", false);
        assert_eq!(
            q,
            [
                ("b".to_string(), "2".to_string()),
                ("a".into(), "x+y".into()),
                ("c".into(), "".into()),
                ("d".into(), "".into())
            ]
        );
    }
}
