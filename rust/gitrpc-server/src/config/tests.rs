use std::time::Duration;

use super::*;

const STORAGE: &str = "[[storage]]\nname = \"default\"\npath = \"/srv\"\n";

#[test]
fn parses_gitaly_keys() {
    let c = Config::from_toml(
        r#"
socket_path = "/tmp/g.sock"
listen_addr = "127.0.0.1:9999"
socket_mode = "0660"
graceful_restart_timeout = "1m"
[[storage]]
name = "default"
path = "/srv/repos"
[logging]
format = "json"
[catfile]
idle_ttl = 5
"#,
    )
    .unwrap();
    assert_eq!(c.storage[0].name, "default");
    assert_eq!(c.logging.format, LogFormat::Json);
    assert_eq!(c.logging.level, "info");
    assert_eq!(c.socket_mode.bits(), 0o660);
    assert_eq!(c.graceful_restart_timeout, Duration::from_secs(60));
    assert_eq!(c.catfile.idle_ttl, Duration::from_secs(5));
    let d = Config::from_toml(STORAGE).unwrap();
    assert_eq!(d.graceful_restart_timeout, Duration::from_secs(10));
    assert_eq!(d.socket_mode, SocketMode::default());
    assert_eq!(d.logging.format, LogFormat::Text);

    let c = Config::from_toml(&format!(
        r#"{STORAGE}
[[concurrency]]
rpc = "/gitaly.RefService/FindAllBranches"
max_per_repo = 2
max_queue_size = 5
max_queue_wait = "1m30s"
[pack_objects_limiting]
max_concurrency = 3
max_queue_length = 10
max_queue_wait = 2
"#
    ))
    .unwrap();
    assert_eq!(c.concurrency[0].max_concurrency, 2);
    assert_eq!(
        c.concurrency[0].max_queue_wait,
        Some(Duration::from_secs(90))
    );
    let p = c.pack_objects_limiting.as_ref().unwrap();
    assert_eq!((p.max_concurrency, p.max_queue_length), (3, 10));
    assert_eq!(p.max_queue_wait, Some(Duration::from_secs(2)));
    let adaptive = Config::from_toml(&format!(
        "{STORAGE}[[concurrency]]\nrpc = \"/gitaly.A/B\"\nmax_concurrency = 4\nadaptive = true\nmin_limit = 5\n"
    ))
    .unwrap_err();
    assert_eq!(adaptive.key(), Some("concurrency.min_limit"));
    assert!(adaptive.to_string().contains("min_limit"), "{adaptive}");
    let adaptive = Config::from_toml(&format!(
        "{STORAGE}[[concurrency]]\nrpc = \"/gitaly.A/B\"\nmax_concurrency = 4\nadaptive = true\nmax_limit = 8\n[adaptive_limiting]\ninterval = \"250ms\"\n"
    ))
    .unwrap();
    assert_eq!(
        adaptive.adaptive_limiting.interval,
        Duration::from_millis(250)
    );
    assert!(Config::default().validate().is_err());
}

/// A key the config doesn't have, or a value of the wrong type, is refused naming the key
/// (with its table) and its line.
#[test]
fn bad_keys_are_named() {
    let e = Config::parse("bogus = 1").unwrap_err();
    assert_eq!(e.key(), Some("bogus"), "{e}");
    assert!(
        e.to_string().starts_with("config: bogus: unknown field"),
        "{e}"
    );
    let e = Config::parse(&format!(
        "{STORAGE}[spool]\nenabled = true\nthreshhold = 5\n"
    ))
    .unwrap_err();
    assert!(
        matches!(&e, ConfigError::Parse { line: Some(6), .. }),
        "{e:?}"
    );
    assert_eq!(e.key(), Some("spool.threshhold"), "{e}");
    let e = Config::parse(&format!("{STORAGE}[logging]\nformat = \"xml\"\n")).unwrap_err();
    assert_eq!(e.key(), Some("logging.format"), "{e}");
    assert!(e.to_string().contains("json"), "{e}");
    let e = Config::parse("socket_mode = \"rw-------\"").unwrap_err();
    assert_eq!(e.key(), Some("socket_mode"), "{e}");
    assert!(e.to_string().contains("octal"), "{e}");
    let e = Config::parse("[connections]\nidle_timeout = \"5 parsecs\"").unwrap_err();
    assert_eq!(e.key(), Some("connections.idle_timeout"), "{e}");
    let e = Config::parse("storage = [ {").unwrap_err();
    assert_eq!(e.key(), None, "{e}");
    assert!(
        matches!(e, ConfigError::Parse { line: Some(1), .. }),
        "{e:?}"
    );
    let e = Config::from_toml(&format!("listen_addr = \"9999\"\n{STORAGE}")).unwrap_err();
    assert_eq!(e.key(), Some("listen_addr"), "{e}");
    let e = Config::load(std::path::Path::new("/nonexistent/gitrpc.toml")).unwrap_err();
    assert!(matches!(e, ConfigError::Read { .. }), "{e:?}");
}

#[test]
fn socket_modes() {
    for (text, bits) in [("\"0600\"", 0o600), ("\"0o666\"", 0o666), ("0o640", 0o640)] {
        let c = Config::parse(&format!("socket_mode = {text}")).unwrap();
        assert_eq!(c.socket_mode.bits(), bits, "{text}");
    }
    assert!(Config::parse("socket_mode = \"1777\"").is_err());
    assert_eq!(SocketMode::default().to_string(), "0600");
}

#[test]
fn housekeeping_and_daily_maintenance() {
    let d = Config::from_toml(STORAGE).unwrap();
    assert_eq!(d.housekeeping.after_writes, 20);
    assert_eq!(d.housekeeping.max_concurrency, 1);
    assert!(d.daily_maintenance.is_none(), "no daily window by default");
    let c = Config::from_toml(&format!(
        "{STORAGE}[housekeeping]\nafter_writes = 5\nmax_concurrency = 2\n[daily_maintenance]\nstart_hour = 23\nstart_minute = 30\nduration = \"1h\"\nstorages = [\"default\"]\n"
    ))
    .unwrap();
    assert_eq!(c.housekeeping.after_writes, 5);
    assert_eq!(c.housekeeping.max_concurrency, 2);
    let w = c.daily_maintenance.as_ref().unwrap();
    assert_eq!((w.start_hour, w.start_minute), (23, 30));
    assert_eq!(w.duration, Duration::from_secs(3600));
    assert!(w.enabled());
    // Gitaly's defaults inside the table: 12:00, 10 minutes, every storage.
    let c = Config::from_toml(&format!("{STORAGE}[daily_maintenance]\n")).unwrap();
    let w = c.daily_maintenance.as_ref().unwrap();
    assert_eq!((w.start_hour, w.start_minute), (12, 0));
    assert_eq!(w.duration, Duration::from_secs(600));
    assert!(w.enabled());
    for off in ["disabled = true", "duration = \"0s\"", "storages = []"] {
        let c = Config::from_toml(&format!("{STORAGE}[daily_maintenance]\n{off}\n")).unwrap();
        assert!(!c.daily_maintenance.as_ref().unwrap().enabled(), "{off}");
    }
    for (bad, key) in [
        (
            "[daily_maintenance]\nstart_hour = 24",
            "daily_maintenance.start_hour",
        ),
        (
            "[daily_maintenance]\nstart_minute = 60",
            "daily_maintenance.start_minute",
        ),
        (
            "[daily_maintenance]\nduration = \"25h\"",
            "daily_maintenance.duration",
        ),
        (
            "[daily_maintenance]\nstorages = [\"nope\"]",
            "daily_maintenance.storages",
        ),
        ("[daily_maintenance]\nbogus = 1", "daily_maintenance.bogus"),
        (
            "[housekeeping]\nmax_concurrency = 0",
            "housekeeping.max_concurrency",
        ),
    ] {
        let e = Config::from_toml(&format!("{STORAGE}{bad}\n")).unwrap_err();
        assert_eq!(e.key(), Some(key), "{bad}: {e}");
    }
    // A disabled window isn't checked.
    Config::from_toml(&format!(
        "{STORAGE}[daily_maintenance]\ndisabled = true\nstart_hour = 99\n"
    ))
    .unwrap();
}

#[test]
fn rate_limiting() {
    let c = Config::from_toml(&format!(
        "{STORAGE}[[rate_limiting]]\nrpc = \"/gitaly.SSHService/SSHUploadPackWithSidechannel\"\ninterval = \"100ms\"\nburst = 5\nmax_delay = \"3s\"\n[[rate_limiting]]\nrpc = \"/gitaly.SmartHTTPService/PostUploadPack\"\ninterval = \"1m\"\nburst = 1\n"
    ))
    .unwrap();
    let r = &c.rate_limiting[0];
    assert_eq!(
        (r.interval, r.burst, r.max_delay),
        (Duration::from_millis(100), 5, Duration::from_secs(3))
    );
    assert_eq!(c.rate_limiting[1].max_delay, Duration::ZERO);
    for (bad, key) in [
        (
            "rpc = \"/gitaly.A/B\"\ninterval = \"0s\"\nburst = 1",
            "rate_limiting.interval",
        ),
        (
            "rpc = \"/gitaly.A/B\"\ninterval = \"1s\"\nburst = 0",
            "rate_limiting.burst",
        ),
        (
            "rpc = \"RefExists\"\ninterval = \"1s\"\nburst = 1",
            "rate_limiting.rpc",
        ),
    ] {
        let e = Config::from_toml(&format!("{STORAGE}[[rate_limiting]]\n{bad}\n")).unwrap_err();
        assert_eq!(e.key(), Some(key), "{bad}: {e}");
    }
    for (bad, field) in [
        (
            "rpc = \"/gitaly.A/B\"\nburst = 1",
            "missing field `interval`",
        ),
        (
            "rpc = \"/gitaly.A/B\"\ninterval = 1\nburst = 1\nmax_wait = 1",
            "max_wait",
        ),
    ] {
        let e = Config::from_toml(&format!("{STORAGE}[[rate_limiting]]\n{bad}\n")).unwrap_err();
        assert!(e.key().unwrap().starts_with("rate_limiting[0]"), "{e}");
        assert!(e.to_string().contains(field), "{e}");
    }
    let twice = "[[rate_limiting]]\nrpc = \"/gitaly.A/B\"\ninterval = 1\nburst = 1\n";
    let e = Config::from_toml(&format!("{STORAGE}{twice}{twice}")).unwrap_err();
    assert_eq!(e.key(), Some("rate_limiting.rpc"), "{e}");
}
