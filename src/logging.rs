//! `--log.level` and `--log.format` (logfmt or json), like Prometheus' own tools.

use std::fmt::{self, Write as _};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Our own crate logs at `level`; dependencies (hyper, reqwest, rustls) at most at
/// `warn`, so that even `--log.level=trace` cannot dump request internals.
pub fn filter(level: &str) -> EnvFilter {
    let deps = match level {
        "error" => "error",
        _ => "warn",
    };
    EnvFilter::new(format!("{deps},handshake_exporter={level}"))
}

/// Install the global subscriber, writing to stderr.
pub fn init(level: &str, format: &str) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter(level))
        .with_writer(std::io::stderr)
        .with_ansi(false);
    let _ = if format == "json" {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init()
    } else {
        builder.event_format(Logfmt).try_init()
    };
}

/// `ts=… level=info msg="…" key=value` lines.
pub struct Logfmt;

impl<S, N> FormatEvent<S, N> for Logfmt
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let mut fields = LogfmtFields::default();
        event.record(&mut fields);
        write!(
            writer,
            "ts={ts} level={} caller={}",
            meta.level().as_str().to_ascii_lowercase(),
            meta.module_path().unwrap_or(meta.target())
        )?;
        if let Some(msg) = &fields.message {
            write!(writer, " msg={}", quote(msg))?;
        }
        writeln!(writer, "{}", fields.rest)
    }
}

#[derive(Default)]
struct LogfmtFields {
    message: Option<String>,
    rest: String,
}

impl Visit for LogfmtFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = Some(value.to_string());
        } else {
            let _ = write!(self.rest, " {}={}", field.name(), quote(value));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let shown = format!("{value:?}");
        if field.name() == "message" {
            self.message = Some(shown);
        } else {
            let _ = write!(self.rest, " {}={}", field.name(), quote(&shown));
        }
    }
}

fn quote(value: &str) -> String {
    let needs = value.is_empty()
        || value
            .chars()
            .any(|c| c == ' ' || c == '=' || c == '"' || c.is_control());
    if !needs {
        return value.to_string();
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn logfmt_values_are_quoted_when_needed() {
        assert_eq!(quote("plain"), "plain");
        assert_eq!(quote("two words"), "\"two words\"");
        assert_eq!(quote("a\"b\nc"), "\"a\\\"b\\nc\"");
        assert_eq!(quote(""), "\"\"");
    }
}
