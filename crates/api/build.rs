//! Embeds ReDoc's standalone bundle so `/redoc` renders with no CDN.
//!
//! The repository holds no downloads, so the bundle is fetched from the npm
//! registry at build time (`npm pack redoc@REDOC_VERSION`, one tarball, no
//! dependencies) into `OUT_DIR`, and accepted only when its SHA-256 is the
//! pinned one. `REDOC_BUNDLE=/path/to/redoc.standalone.js` supplies it instead
//! (offline builds, the Docker image). It is fetched once per target
//! directory.
//!
//! Without npm (or without the registry) the build still succeeds, with a
//! warning: `/redoc` then says how to get the bundle and points at `/docs`,
//! whose assets are always in the binary. Nothing is ever loaded from a CDN.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

const REDOC_VERSION: &str = "2.5.4";
/// SHA-256 of `package/bundles/redoc.standalone.js` in `redoc-2.5.4.tgz`.
const REDOC_SHA256: &str = "dcaf76612bc4a3fbcc923a8966dee2f6146a5f32e5ce1b6f02dd60cbbf89500b";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=REDOC_BUNDLE");
    println!("cargo:rustc-check-cfg=cfg(redoc_bundled)");
    println!("cargo:rustc-env=REDOC_VERSION={REDOC_VERSION}");
    println!("cargo:rustc-env=SAAS_API_COMMIT={}", commit());

    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let target = out.join("redoc.standalone.js");
    match bundle(&out, &target) {
        Ok(()) => println!("cargo:rustc-cfg=redoc_bundled"),
        Err(reason) => println!(
            "cargo:warning=ReDoc {REDOC_VERSION} is not embedded ({reason}); /redoc will point to /docs. \
             Install npm, or set REDOC_BUNDLE to a copy of redoc.standalone.js, and rebuild."
        ),
    }
}

/// The commit for `saas_api_build_info`: `SAAS_API_COMMIT` when set (the
/// Docker image has no `.git`), else `git rev-parse --short=12 HEAD`, else
/// `unknown`. Rebuilt when HEAD moves.
fn commit() -> String {
    println!("cargo:rerun-if-env-changed=SAAS_API_COMMIT");
    if let Ok(given) = std::env::var("SAAS_API_COMMIT")
        && !given.trim().is_empty()
    {
        return given.trim().to_owned();
    }
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        let dir = Path::new(&dir);
        println!("cargo:rerun-if-changed={}", dir.join("HEAD").display());
        if let Some(reference) = git(&["symbolic-ref", "-q", "HEAD"]) {
            let path = dir.join(&reference);
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
            let packed = dir.join("packed-refs");
            if packed.exists() {
                println!("cargo:rerun-if-changed={}", packed.display());
            }
        }
    }
    git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".to_owned())
}

fn bundle(out: &Path, target: &Path) -> Result<(), String> {
    if let Some(given) = std::env::var_os("REDOC_BUNDLE") {
        let bytes = std::fs::read(&given).map_err(|e| format!("REDOC_BUNDLE {}: {e}", Path::new(&given).display()))?;
        check(&bytes)?;
        return std::fs::write(target, bytes).map_err(|e| e.to_string());
    }
    if std::fs::read(target).is_ok_and(|bytes| check(&bytes).is_ok()) {
        return Ok(());
    }
    let status = Command::new("npm")
        .args([
            "pack",
            &format!("redoc@{REDOC_VERSION}"),
            "--silent",
            "--pack-destination",
        ])
        .arg(out)
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("npm: {e}"))?;
    if !status.success() {
        return Err(format!("npm pack redoc@{REDOC_VERSION} failed"));
    }
    let tarball = out.join(format!("redoc-{REDOC_VERSION}.tgz"));
    let extracted = Command::new("tar")
        .arg("-xzf")
        .arg(&tarball)
        .arg("-C")
        .arg(out)
        .arg("package/bundles/redoc.standalone.js")
        .status()
        .map_err(|e| format!("tar: {e}"))?;
    if !extracted.success() {
        return Err("tar could not extract the bundle".into());
    }
    let bytes = std::fs::read(out.join("package/bundles/redoc.standalone.js")).map_err(|e| e.to_string())?;
    check(&bytes)?;
    std::fs::write(target, bytes).map_err(|e| e.to_string())?;
    let _ = std::fs::remove_file(tarball);
    let _ = std::fs::remove_dir_all(out.join("package"));
    Ok(())
}

fn check(bytes: &[u8]) -> Result<(), String> {
    let digest = Sha256::digest(bytes);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    if hex == REDOC_SHA256 {
        Ok(())
    } else {
        Err(format!("the bundle's SHA-256 is {hex}, not the pinned {REDOC_SHA256}"))
    }
}
