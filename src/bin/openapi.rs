//! Writes `docs/openapi.json` from the route table (`npm run openapi`, which runs
//! `cargo run --features openapi --bin openapi`). With `--check` it writes nothing and
//! fails if the committed file differs.

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.json");
    let text = match edgestate::openapi::render() {
        Ok(text) => text,
        Err(e) => {
            eprintln!("openapi: {e}");
            return ExitCode::FAILURE;
        }
    };
    if std::env::args().any(|a| a == "--check") {
        let same = std::fs::read_to_string(&file).is_ok_and(|committed| committed == text);
        if !same {
            eprintln!(
                "docs/openapi.json is out of date: run `{}`",
                edgestate::openapi::REGENERATE
            );
            return ExitCode::FAILURE;
        }
        return ExitCode::SUCCESS;
    }
    match std::fs::write(&file, text) {
        Ok(()) => {
            println!("wrote {}", file.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("openapi: writing {}: {e}", file.display());
            ExitCode::FAILURE
        }
    }
}
