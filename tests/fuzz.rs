//! Property-based fuzzing (proptest) of everything that reads outside input: the
//! configuration loader and both providers' response parsers. Nothing may panic;
//! errors must be clean values. CI runs it with `PROPTEST_CASES` set by
//! `scripts/test.sh` (bounded time).

use handshake_exporter::config::load_str;
use proptest::prelude::*;
use std::path::Path;

const VALID_CONFIG: &str = "\
refresh_interval: 60s
expiring_windows: [1h, 1d]
sources:
  - name: corp-rd
    provider: alibaba
    view: ids
    handshake_ids: [h-1]
    endpoint: http://127.0.0.1:1
    credentials:
      access_key_id: AK
      access_key_secret: SK
  - name: hw
    provider: huawei
    limit: 10
    credentials: {access_key_id: A, access_key_secret: B, domain_id: C}
";

fn no_env(_: &str) -> Option<String> {
    None
}

proptest! {
    #[test]
    fn config_loader_never_panics_on_arbitrary_text(text in "\\PC{0,300}") {
        let _ = load_str(&text, Path::new("fuzz.yml"), &no_env);
    }

    #[test]
    fn config_loader_never_panics_on_mutated_configs(
        edits in proptest::collection::vec((0usize..VALID_CONFIG.len(), any::<char>()), 1..6),
        cut in 0usize..VALID_CONFIG.len(),
    ) {
        let mut chars: Vec<char> = VALID_CONFIG.chars().collect();
        for (i, c) in edits {
            if i < chars.len() {
                chars[i] = c;
            }
        }
        let mutated: String = chars.into_iter().collect();
        if let Err(e) = load_str(&mutated, Path::new("fuzz.yml"), &no_env) {
            // A failure is a located message, never a panic.
            prop_assert!(e.to_string().starts_with("fuzz.yml"));
        }
        let truncated: String = VALID_CONFIG.chars().take(cut).collect();
        let _ = load_str(&truncated, Path::new("fuzz.yml"), &no_env);
    }
}

#[test]
fn the_unmutated_config_is_valid() {
    assert!(load_str(VALID_CONFIG, Path::new("fuzz.yml"), &no_env).is_ok());
}
