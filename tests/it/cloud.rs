//! The daily job against real object-store servers on 127.0.0.1: S3 (`moto_server`) and Azure
//! Blob (`azurite-blob`), started here; buckets are made and inspected with the servers' own
//! SDKs (`tests/cloud/objects.py`), never through the crate. `.ci/run` installs them and sets
//! `INCENTIVES_REQUIRE_CLOUD_SERVERS=1`, so in CI a missing server fails instead of skipping.

use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use crate::common::*;

const DATE: &str = "2026-11-01";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_for(port: u16) {
    for _ in 0..200 {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no server came up on port {port}");
}

/// A server process, killed when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    /// Stops the server gracefully (azurite saves its data on SIGTERM), then for sure.
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        for _ in 0..100 {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn azurite_bin() -> String {
    std::env::var("INCENTIVES_AZURITE").unwrap_or_else(|_| "azurite-blob".into())
}

fn available() -> bool {
    let runs = |cmd: &str, args: &[&str]| {
        Command::new(cmd)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let ok = runs("moto_server", &["--help"])
        && runs(&azurite_bin(), &["--help"])
        && runs("python3", &["-c", "import boto3, azure.storage.blob"]);
    if !ok {
        assert!(
            std::env::var_os("INCENTIVES_REQUIRE_CLOUD_SERVERS").is_none(),
            "moto_server, azurite-blob (or $INCENTIVES_AZURITE) and python3 with boto3 and azure-storage-blob are required"
        );
        eprintln!("SKIPPED: moto_server / azurite-blob / boto3 / azure-storage-blob not found (see .ci/run)");
    }
    ok
}

/// Starts `command` quietly and waits until it listens on `port`.
fn serve(command: &mut Command, port: u16) -> Server {
    let child = command.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    wait_for(port);
    Server { child, port }
}

fn moto() -> Server {
    let port = free_port();
    serve(Command::new("moto_server").args(["-H", "127.0.0.1", "-p", &port.to_string()]), port)
}

fn azurite(location: &Path, port: u16) -> Server {
    let mut command = Command::new(azurite_bin());
    command
        .args([
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            &port.to_string(),
            "--loose",
            "--skipApiVersionCheck",
        ])
        .args(["--disableTelemetry", "--silent", "--location"])
        .arg(location);
    serve(&mut command, port)
}

/// Runs `tests/cloud/objects.py` (the servers' own SDKs).
fn objects(kind: &str, server: &Server, args: &[&str]) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cloud/objects.py");
    let o = Command::new("python3")
        .arg(script)
        .args([kind, &server.port.to_string(), "lake"])
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "objects.py {kind} {args:?}: {}", stderr(&o));
}

fn env(s3: &Server, az: &Server, retry_secs: u32) -> Vec<(String, String)> {
    [
        ("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{}", s3.port)),
        ("AWS_ALLOW_HTTP", "true".into()),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AZURE_STORAGE_USE_EMULATOR", "true".into()),
        ("AZURITE_BLOB_STORAGE_URL", format!("http://127.0.0.1:{}", az.port)),
        ("AZURE_ALLOW_HTTP", "true".into()),
        ("INCENTIVES_RETRY_TIMEOUT_SECS", retry_secs.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn run(args: &[&str], env: &[(String, String)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_incentives"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .unwrap()
}

fn download(kind: &str, server: &Server, prefix: &str) -> BTreeMap<String, Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    objects(kind, server, &["download", prefix, dir.path().to_str().unwrap()]);
    final_files(dir.path())
}

fn local_reference() -> (tempfile::TempDir, BTreeMap<String, Vec<u8>>) {
    let out = tempfile::tempdir().unwrap();
    let o = incentives(&["run", "-q", "--date", DATE, "--output", out.path().to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let files = final_files(out.path());
    assert!(files.len() > 150, "{}", files.len());
    (out, files)
}

fn assert_same(label: &str, got: &BTreeMap<String, Vec<u8>>, want: &BTreeMap<String, Vec<u8>>) {
    let (g, w): (Vec<_>, Vec<_>) = (got.keys().collect(), want.keys().collect());
    assert_eq!(g, w, "{label}: not the same files as the local run");
    for (k, v) in want {
        assert!(got[k] == *v, "{label}: {k} differs from the local run");
    }
}

#[test]
fn the_daily_job_on_s3_azure_and_mixed_gives_the_local_reports() {
    if !available() {
        return;
    }
    let (_local, want) = local_reference();
    let s3 = moto();
    let az_dir = tempfile::tempdir().unwrap();
    let az = azurite(az_dir.path(), free_port());
    let landing = concat!(env!("CARGO_MANIFEST_DIR"), "/sample_data/landing");
    for (kind, server) in [("s3", &s3), ("az", &az)] {
        objects(kind, server, &["create"]);
        objects(kind, server, &["upload", landing, "landing"]);
    }
    let env = env(&s3, &az, 30);
    let cases = [
        ("s3://lake/landing", "s3://lake/out", "s3"),
        ("az://lake/landing", "az://lake/out", "az"),
        ("s3://lake/landing", "az://lake/mixed", "az"),
        ("az://lake/landing", "s3://lake/mixed", "s3"),
        (landing, "s3://lake/from-local", "s3"),
    ];
    for (input, output, kind) in cases {
        let o = run(&["run", "-q", "--input", input, "--output", output, "--date", DATE], &env);
        assert!(o.status.success(), "{input} -> {output}: {}", stderr(&o));
        let server = if kind == "s3" { &s3 } else { &az };
        let prefix = output.split_once("lake/").unwrap().1;
        assert_same(&format!("{input} -> {output}"), &download(kind, server, prefix), &want);
    }
    // A re-run replaces the published run in place (a conditional update of the manifest).
    let o = run(
        &["run", "-q", "--input", "s3://lake/landing", "--output", "s3://lake/out", "--date", DATE],
        &env,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_same("re-run", &download("s3", &s3, "out"), &want);
    // validate reads the landing zone from Azure too and lists the same rejects.
    let local = incentives(&["validate", "--date", DATE]);
    let remote = run(&["validate", "--input", "az://lake/landing", "--date", DATE], &env);
    assert_eq!(stdout(&remote), stdout(&local));
}

#[test]
fn a_second_run_is_refused_while_another_holds_the_lock_in_the_bucket() {
    if !available() {
        return;
    }
    let s3 = moto();
    let az_dir = tempfile::tempdir().unwrap();
    let az = azurite(az_dir.path(), free_port());
    objects("s3", &s3, &["create"]);
    let landing = concat!(env!("CARGO_MANIFEST_DIR"), "/sample_data/landing");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_string();
    let holder = serde_json::json!({
        "host": host, "pid": std::process::id(), "started_at": "2026-11-25T01:00:00Z", "expires_at": "2999-01-01T00:00:00Z"
    });
    objects("s3", &s3, &["put", &format!("out/_locks/{DATE}.lock"), &holder.to_string()]);
    let env = env(&s3, &az, 10);
    let o = run(&["run", "-q", "--input", landing, "--output", "s3://lake/out", "--date", DATE], &env);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains(&format!("another run of {DATE} is in progress: pid {} on {host}", std::process::id())),
        "{err}"
    );
    // An expired lock is taken over.
    let expired = serde_json::json!({
        "host": "elsewhere", "pid": 1, "started_at": "2026-11-25T01:00:00Z", "expires_at": "2026-11-25T02:00:00Z"
    });
    objects("s3", &s3, &["put", &format!("out/_locks/{DATE}.lock"), &expired.to_string()]);
    let o = run(&["run", "-q", "--input", landing, "--output", "s3://lake/out", "--date", DATE], &env);
    assert!(o.status.success(), "{}", stderr(&o));
    // Runs started together over an expired lock: the bucket's conditional put lets exactly
    // one take it over (each waits between reading the lock and replacing it, so all find it).
    objects("s3", &s3, &["put", &format!("out/_locks/{DATE}.lock"), &expired.to_string()]);
    let args =
        ["run", "--input", landing, "--output", "s3://lake/out", "--date", DATE].map(std::ffi::OsStr::new);
    race_for_a_stale_lock(3, &args, &env, 500);
}

#[test]
fn a_server_dying_mid_run_never_publishes_a_partial_run_and_a_transient_fault_is_retried() {
    if !available() {
        return;
    }
    let (local, want) = local_reference();
    let staged: usize = {
        let m: serde_json::Value = serde_json::from_slice(
            &std::fs::read(local.path().join(format!("runs/{DATE}/manifest.json"))).unwrap(),
        )
        .unwrap();
        m["outputs"].as_object().unwrap().len() + 1
    };
    let s3 = moto();
    let az_dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut az = azurite(az_dir.path(), port);
    objects("az", &az, &["create"]);
    let landing = concat!(env!("CARGO_MANIFEST_DIR"), "/sample_data/landing");
    let args = ["run", "-q", "--input", landing, "--output", "az://lake/out", "--date", DATE];
    assert!(run(&args, &env(&s3, &az, 10)).status.success());
    let good = download("az", &az, "out");
    assert_same("first run", &good, &want);
    let manifest_key = format!("runs/{DATE}/manifest.json");
    let old_manifest: serde_json::Value = {
        let dir = tempfile::tempdir().unwrap();
        objects("az", &az, &["download", &format!("out/runs/{DATE}"), dir.path().to_str().unwrap()]);
        serde_json::from_slice(&std::fs::read(dir.path().join("manifest.json")).unwrap()).unwrap()
    };

    // The server dies while the run stages its files, then while it copies them into place.
    for kill_at in [5, staged + 10] {
        let mut env = env(&s3, &az, 2);
        env.push(("INCENTIVES_TEST_KILL_AT".into(), format!("{kill_at}:{}", az.child.id())));
        let o = run(&args, &env);
        assert_eq!(o.status.code(), Some(2), "kill at {kill_at}: {}", stderr(&o));
        assert!(stderr(&o).contains("az://lake/out"), "the message names the location: {}", stderr(&o));
        drop(az);
        az = azurite(az_dir.path(), port);
        // Readers who follow the manifest still see the previous run, complete.
        let dir = tempfile::tempdir().unwrap();
        objects("az", &az, &["download", "out", dir.path().to_str().unwrap()]);
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join(&manifest_key)).unwrap()).unwrap();
        assert_eq!(manifest, old_manifest, "kill at {kill_at}: the manifest is the previous run's");
        let from = manifest["published_from"].as_str().unwrap();
        for (path, meta) in manifest["outputs"].as_object().unwrap() {
            let bytes = std::fs::read(dir.path().join(from).join(path)).unwrap();
            let sha = incentives::digest::sha256_hex(&bytes);
            assert_eq!(meta["sha256"].as_str().unwrap(), sha, "kill at {kill_at}: {from}/{path}");
        }
        if kill_at == 5 {
            assert_same("killed while staging", &final_files(dir.path()), &good);
        }
    }

    // A transient fault: the server dies and comes back while the run retries.
    let mut env = env(&s3, &az, 60);
    env.push(("INCENTIVES_TEST_KILL_AT".into(), format!("20:{}", az.child.id())));
    let mut child = Command::new(env!("CARGO_BIN_EXE_incentives"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    while az.child.try_wait().unwrap().is_none() {
        assert!(child.try_wait().unwrap().is_none(), "the run ended before the server died");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    drop(az);
    let az = azurite(az_dir.path(), port);
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "the run retried through the outage: {}", stderr(&o));
    assert_same("after a transient fault", &download("az", &az, "out"), &want);
}
