//! The INI files of the SDKs' credential profiles (`~/.alibabacloud/credentials`,
//! `~/.huaweicloud/credentials`): `[section]` headers, `key = value` lines, `#` and
//! `;` comments. Values are kept verbatim (trimmed); no interpolation.

use std::collections::BTreeMap;

/// Sections by name, each a map of keys to values (key order kept sorted).
pub type Ini = BTreeMap<String, BTreeMap<String, String>>;

/// Parse INI text. Errors name the line, never its value (it may be a secret).
pub fn parse(text: &str) -> Result<Ini, String> {
    let mut out = Ini::new();
    let mut section: Option<String> = None;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            let name = rest
                .strip_suffix(']')
                .ok_or_else(|| format!("line {}: unterminated section header", n + 1))?;
            let name = name.trim().to_string();
            out.entry(name.clone()).or_default();
            section = Some(name);
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| format!("line {}: expected key = value", n + 1))?;
        let sec = section
            .as_ref()
            .ok_or_else(|| format!("line {}: key outside any [section]", n + 1))?;
        out.entry(sec.clone())
            .or_default()
            .insert(key.trim().to_string(), value.trim().to_string());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_keys_and_comments() {
        let ini =
            parse("# c\n[default]\ntype = access_key\naccess_key_id=AK\n; x\n[other]\nk = v = w\n");
        let ini = ini.unwrap_or_default();
        assert_eq!(ini["default"]["type"], "access_key");
        assert_eq!(ini["default"]["access_key_id"], "AK");
        assert_eq!(ini["other"]["k"], "v = w");
        assert!(parse("k = v\n").is_err_and(|e| e.contains("line 1")));
        assert!(parse("[a\n").is_err());
        assert!(parse("[a]\nsecret-without-equals\n").is_err_and(|e| !e.contains("secret")));
    }
}
