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

/// Arbitrary JSON up to four levels deep whose object keys are mostly a provider's
/// own field names (`keys`), so that the parsers get past their first checks.
fn json_value(keys: &'static [&'static str]) -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|f| serde_json::json!(f)),
        "\\PC{0,20}".prop_map(serde_json::Value::from),
    ];
    let key = prop_oneof![
        3 => proptest::sample::select(keys).prop_map(str::to_string),
        1 => "[A-Za-z_]{1,10}",
    ];
    leaf.prop_recursive(4, 64, 8, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
            proptest::collection::btree_map(key.clone(), inner, 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

mod huawei {
    use handshake_exporter::provider::huawei::wire::{
        parse_error, parse_list, parse_show, to_handshake,
    };
    use proptest::prelude::*;
    use std::sync::Arc;

    const PAGE: &str = r#"{"handshakes":[{"id":"h-2tnfkrhe64qokwripd2kqrhd7d3079u5","urn":"organizations::x:handshake:o-1/h-2","updated_at":"2024-04-30T08:00:00Z","created_at":"2024-04-30T08:00:00Z","expired_at":"2024-05-14T08:00:00Z","management_account_id":"3f1b","management_account_name":"acme-root","organization_id":"o-fhkm","notes":"Please join","target":{"type":"account","entity":"644c"},"status":"pending"}],"page_info":{"next_marker":"mk/1+ab=~ é","current_count":1}}"#;

    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        super::json_value(&[
            "handshakes",
            "page_info",
            "next_marker",
            "handshake",
            "id",
            "status",
            "target",
            "expired_at",
            "error_code",
            "error_msg",
        ])
    }

    proptest! {
        #[test]
        fn parsers_never_panic_on_arbitrary_bytes(body in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = parse_list("ListHandshakes", &body);
            let _ = parse_show("ShowHandshake", &body);
            let _ = parse_error("ListHandshakes", 500, &Default::default(), &body);
        }

        #[test]
        fn parsers_never_panic_on_arbitrary_json(v in json_value()) {
            let body = serde_json::to_vec(&v).unwrap_or_default();
            if let Ok(page) = parse_list("ListHandshakes", &body) {
                for dto in page.handshakes {
                    let _ = to_handshake(dto, &Arc::from("fuzz"));
                }
            }
            let _ = parse_show("ShowHandshake", &body);
            for status in [400u16, 401, 404, 429, 503] {
                let e = parse_error("ListHandshakes", status, &Default::default(), &body);
                prop_assert!(e.http_status.is_none() || e.http_status == Some(status));
            }
        }

        #[test]
        fn truncated_pages_are_errors_not_empty_lists(cut in 0usize..PAGE.len()) {
            let body = &PAGE.as_bytes()[..cut];
            prop_assert!(parse_list("ListHandshakes", body).is_err(), "cut at {}", cut);
        }
    }

    #[test]
    fn the_untouched_page_parses() {
        let page = parse_list("ListHandshakes", PAGE.as_bytes());
        assert!(page.is_ok_and(|p| p.handshakes.len() == 1));
    }
}

mod alibaba {
    use handshake_exporter::provider::alibaba::parse_error;
    use handshake_exporter::provider::alibaba::wire::{
        parse_error_body, parse_get, parse_list_page,
    };
    use proptest::prelude::*;
    use std::sync::Arc;

    const PAGE: &str = r#"{"RequestId":"7C1F","TotalCount":2,"PageNumber":1,"PageSize":100,"Handshakes":{"Handshake":[{"HandshakeId":"h-Q3x9Lm2Pz8Rt5Vw1","ResourceDirectoryId":"rd-k4Ab9q","MasterAccountId":"1512666876910000","MasterAccountName":"ops-admin@example.com","TargetEntity":"1772422852740000","TargetType":"Account","Status":"Pending","Note":"join","CreateTime":"2024-04-28T08:15:02Z","ModifyTime":"2024-04-28T08:15:02Z","ExpireTime":"2024-05-12T08:15:02Z"},{"HandshakeId":"h-Bn7Kd0Ws4Yh2Jc6E","InviteEntity":"newteam@example.com","InviteType":"Email","Status":"Expired"}]}}"#;

    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        super::json_value(&[
            "Handshakes",
            "Handshake",
            "TotalCount",
            "PageNumber",
            "PageSize",
            "HandshakeId",
            "Status",
            "TargetType",
            "ExpireTime",
            "Code",
            "Message",
        ])
    }

    proptest! {
        #[test]
        fn parsers_never_panic_on_arbitrary_bytes(body in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = parse_list_page(&body);
            let _ = parse_get(&body);
            let _ = parse_error_body(&body);
            let _ = parse_error("GetHandshake", 503, &Default::default(), &body);
        }

        #[test]
        fn parsers_never_panic_on_arbitrary_json(v in json_value()) {
            let body = serde_json::to_vec(&v).unwrap_or_default();
            if let Ok(page) = parse_list_page(&body) {
                for h in page.items {
                    let _ = h.into_handshake(Arc::from("fuzz"));
                }
            }
            if let Ok(h) = parse_get(&body) {
                let _ = h.into_handshake(Arc::from("fuzz"));
            }
            for status in [400u16, 403, 404, 429, 500, 503] {
                let e = parse_error("ListHandshakesForResourceDirectory", status, &Default::default(), &body);
                prop_assert!(!e.message.contains("\n\n\n"));
            }
        }

        #[test]
        fn truncated_pages_are_errors_not_empty_lists(cut in 0usize..PAGE.len()) {
            prop_assert!(parse_list_page(&PAGE.as_bytes()[..cut]).is_err(), "cut at {}", cut);
        }
    }

    #[test]
    fn the_untouched_page_parses_with_the_aliases() {
        let page = parse_list_page(PAGE.as_bytes());
        let handshakes = page.map(|p| p.items).unwrap_or_default();
        assert_eq!(handshakes.len(), 2);
        let second = handshakes
            .into_iter()
            .nth(1)
            .and_then(|h| h.into_handshake(Arc::from("f")));
        assert_eq!(
            second.and_then(|h| h.target_entity).as_deref(),
            Some("newteam@example.com")
        );
    }
}

mod aws {
    use handshake_exporter::model::Interner;
    use handshake_exporter::provider::aws::wire::{parse_describe, parse_error, parse_list};
    use proptest::prelude::*;
    use std::sync::Arc;

    const PAGE: &str = r#"{"Handshakes":[{"Id":"h-examplehandshakeid111","Arn":"arn:aws:organizations::111111111111:handshake/o-exampleorgid/invite/h-examplehandshakeid111","Parties":[{"Id":"o-exampleorgid","Type":"ORGANIZATION"},{"Id":"222222222222","Type":"ACCOUNT"}],"State":"OPEN","RequestedTimestamp":1.7E9,"ExpirationTimestamp":"2024-05-14T08:00:00Z","Action":"INVITE","Resources":[]}],"NextToken":"AAEAAbX+tok/Zm9v=="}"#;

    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        super::json_value(&[
            "Handshakes",
            "Handshake",
            "NextToken",
            "Id",
            "State",
            "Parties",
            "Type",
            "RequestedTimestamp",
            "ExpirationTimestamp",
            "Action",
            "__type",
            "message",
        ])
    }

    proptest! {
        #[test]
        fn parsers_never_panic_on_arbitrary_bytes(body in proptest::collection::vec(any::<u8>(), 0..400)) {
            let source: Arc<str> = Arc::from("fuzz");
            let _ = parse_list("ListHandshakesForOrganization", &body, &source, &mut Interner::default());
            let _ = parse_describe("DescribeHandshake", &body, &source);
            let _ = parse_error("ListHandshakesForOrganization", 400, &Default::default(), &body);
        }

        #[test]
        fn parsers_never_panic_on_arbitrary_json(v in json_value()) {
            let source: Arc<str> = Arc::from("fuzz");
            let body = serde_json::to_vec(&v).unwrap_or_default();
            let _ = parse_list("ListHandshakesForOrganization", &body, &source, &mut Interner::default());
            let _ = parse_describe("DescribeHandshake", &body, &source);
            for status in [400u16, 403, 404, 429, 500] {
                let e = parse_error("ListHandshakesForOrganization", status, &Default::default(), &body);
                prop_assert!(e.http_status.is_none() || e.http_status == Some(status));
            }
        }

        #[test]
        fn truncated_pages_are_errors_not_empty_lists(cut in 0usize..PAGE.len()) {
            let body = &PAGE.as_bytes()[..cut];
            let source: Arc<str> = Arc::from("fuzz");
            prop_assert!(
                parse_list("ListHandshakesForOrganization", body, &source, &mut Interner::default()).is_err(),
                "cut at {}",
                cut
            );
        }
    }

    #[test]
    fn the_untouched_page_parses() {
        let source: Arc<str> = Arc::from("fuzz");
        let page = parse_list(
            "ListHandshakesForOrganization",
            PAGE.as_bytes(),
            &source,
            &mut Interner::default(),
        );
        assert!(page.is_ok_and(|p| p.handshakes.len() == 1 && p.next_token.is_some()));
    }
}
