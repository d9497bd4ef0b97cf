//! Records the git commit the binary is built from (`gregor --version`). Outside a git
//! checkout (a container build from copied sources) it is "unknown", or `GREGOR_COMMIT` if set.

fn main() {
    println!("cargo:rerun-if-env-changed=GREGOR_COMMIT");
    for path in [".git/HEAD", ".git/refs/heads", ".git/packed-refs"] {
        if std::path::Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    let commit = std::env::var("GREGOR_COMMIT").ok().filter(|c| !c.is_empty()).or_else(|| {
        let out = std::process::Command::new("git").args(["rev-parse", "--short=12", "HEAD"]).output().ok()?;
        let text = String::from_utf8(out.stdout).ok()?;
        (out.status.success() && !text.trim().is_empty()).then(|| text.trim().to_string())
    });
    println!("cargo:rustc-env=GREGOR_COMMIT={}", commit.unwrap_or_else(|| "unknown".into()));
}
