//! Durability: a run that exits 0 is on the disk. A power loss is simulated the way it happens
//! to a file system: the image of a loop-mounted ext4 is copied while it is still mounted (what
//! the kernel had not yet written to it is lost, as on a power cut), and the copy is mounted,
//! which replays its journal as a reboot would.
//!
//! Loop devices need root; where they are missing the test says so and passes, unless
//! `INCENTIVES_REQUIRE_LOOP_MOUNT=1` (CI) makes that a failure.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

/// A loop-mounted image, unmounted when dropped.
struct Mounted(PathBuf);

impl Mounted {
    fn new(image: &Path, dir: &Path) -> Option<Mounted> {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .arg("-o")
            .arg("loop")
            .arg(image)
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Mounted(dir.to_path_buf()))
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn make_image(path: &Path) -> bool {
    let file = std::fs::File::create(path).unwrap();
    file.set_len(64 << 20).unwrap();
    Command::new("mkfs.ext4").args(["-q", "-F"]).arg(path).status().is_ok_and(|s| s.success())
}

/// Every file the manifest of `date` lists, with its SHA-256, under `out`.
fn assert_whole(out: &Path, date: &str, when: &str) -> usize {
    let manifest = std::fs::read(out.join(format!("runs/{date}/manifest.json")))
        .unwrap_or_else(|e| panic!("{when}: no manifest: {e}"));
    let manifest: serde_json::Value =
        serde_json::from_slice(&manifest).unwrap_or_else(|e| panic!("{when}: the manifest is torn: {e}"));
    let outputs = manifest["outputs"].as_object().unwrap();
    for (path, meta) in outputs {
        let bytes = std::fs::read(out.join(path)).unwrap_or_else(|e| panic!("{when}: {path}: {e}"));
        assert_eq!(
            meta["sha256"].as_str().unwrap(),
            incentives::digest::sha256_hex(&bytes),
            "{when}: {path} ({} bytes) is not what the run wrote",
            bytes.len()
        );
    }
    outputs.len()
}

#[test]
fn a_run_that_exited_survives_a_power_loss_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let image = tmp.path().join("disk.img");
    let mounted = if make_image(&image) { Mounted::new(&image, &tmp.path().join("disk")) } else { None };
    let Some(mounted) = mounted else {
        assert!(
            std::env::var("INCENTIVES_REQUIRE_LOOP_MOUNT").as_deref() != Ok("1"),
            "INCENTIVES_REQUIRE_LOOP_MOUNT=1 but no ext4 image could be made and loop-mounted"
        );
        eprintln!("skipped: no ext4 image could be made and loop-mounted here (needs root and loop devices)");
        return;
    };
    let out = mounted.0.join("out");
    let date = "2026-10-03";
    let args = ["run", "-q", "--date", date, "--output", out.to_str().unwrap()];
    let o = incentives(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    // The power cut: the disk as it is now, while the file system is still mounted.
    let power_loss = |when: &str| {
        let copy = tmp.path().join("after-power-loss.img");
        std::fs::copy(&image, &copy).unwrap();
        let rebooted = Mounted::new(&copy, &tmp.path().join("rebooted")).expect("the copy mounts");
        let files = assert_whole(&rebooted.0.join("out"), date, when);
        assert!(files > 100, "{when}: {files} files");
    };
    power_loss("after the run exited");
    // A second run of the date, stopped at publishing checkpoints (every staged file, each
    // link, the publishing rename) and the power cut at once: the first run or the second,
    // whole. Every 37th checkpoint until the run gets through, then each of the last ones
    // (around the rename).
    let killed_at = |k: usize| {
        let o = Command::new(env!("CARGO_BIN_EXE_incentives"))
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("INCENTIVES_TEST_KILL_AT", k.to_string())
            .output()
            .unwrap();
        if o.status.success() {
            return false;
        }
        power_loss(&format!("killed at checkpoint {k}"));
        true
    };
    let mut k = 1;
    while killed_at(k) {
        k += 37;
        assert!(k < 10_000, "the run never finished");
    }
    // The run has fewer than k checkpoints and at least k - 37: from k - 74 on, each one until
    // the run gets through covers at least the last 37.
    let last = (k.saturating_sub(74).max(1)..k).take_while(|&k| killed_at(k)).count();
    assert!(last > 10, "only {last} checkpoints");
    drop(mounted);
}
