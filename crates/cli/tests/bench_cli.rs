//! `ftgo bench orders` run as a user runs it, against real Kafka and the registry. The
//! services may or may not be running: a short run either finishes (exit 0) or reports its
//! unfinished orders (exit 1); either way the report is printed.

mod common;

use anyhow::{Result, ensure};
use common::ftgo;

#[test]
fn bad_arguments_are_explained() -> Result<()> {
    let run = ftgo(&["bench", "orders", "--rate", "0"])?;
    ensure!(
        run.code == 2,
        "--rate 0 exited {}: {}",
        run.code,
        run.stderr
    );
    ensure!(
        run.stderr.contains("--rate must be at least 1 order/s"),
        "{}",
        run.stderr
    );
    let run = ftgo(&["bench", "orders", "--rate", "10", "--max"])?;
    ensure!(run.code == 2, "--rate with --max exited {}", run.code);
    ensure!(
        run.stderr
            .contains("'--rate <N>' cannot be used with '--max'"),
        "{}",
        run.stderr
    );
    let run = ftgo(&["bench", "orders", "--half", "--rate", "10"])?;
    ensure!(run.code == 2, "--half with --rate exited {}", run.code);
    let run = ftgo(&["bench", "orders", "--orders", "0"])?;
    ensure!(
        run.code == 2 && run.stderr.contains("--orders must be at least 1"),
        "{}",
        run.stderr
    );
    Ok(())
}

#[test]
fn a_short_run_reports_finished_or_unfinished_orders() -> Result<()> {
    // The demo data must be there (idempotent; waits for the services only when they run).
    let seed = ftgo(&["seed", "--timeout", "20s"])?;
    let run = ftgo(&["bench", "orders", "--orders", "20", "--timeout", "2s"])?;
    if run.stderr.contains("run `ftgo seed` first") && seed.stderr.contains("service running?") {
        // A platform where the services never ran (a fresh machine, before test-all's demo):
        // no demo data can exist, and the bench must say what to do.
        ensure!(run.code == 2, "exit {}: {}", run.code, run.stderr);
        eprintln!("no demo data and no services: the report is checked once the demo has run");
        return Ok(());
    }
    if run.stderr.contains("run `ftgo seed` first") {
        anyhow::bail!(
            "the demo data is missing even after `ftgo seed` (exit {}):\n{}\n{}",
            seed.code,
            seed.stderr,
            run.stderr
        );
    }
    ensure!(
        run.code == 0 || run.code == 1,
        "exit {}:\n{}\n{}",
        run.code,
        run.stdout,
        run.stderr
    );
    for line in [
        "orders sent:   20 ",
        "finished:",
        "throughput:",
        "latency:",
        "max: ",
    ] {
        ensure!(run.stdout.contains(line), "no {line:?} in:\n{}", run.stdout);
    }
    ensure!(
        run.stderr.contains("sent 20/20"),
        "no progress on stderr:\n{}",
        run.stderr
    );
    if run.code == 1 {
        ensure!(
            run.stdout.contains("unfinished:    ")
                && run.stdout.contains("ftgo order show ")
                && run.stdout.contains("deploy/local/services status"),
            "exit 1 without the unfinished orders and hints:\n{}",
            run.stdout
        );
    } else {
        ensure!(
            run.stdout.contains("unfinished 0"),
            "exit 0 with unfinished orders:\n{}",
            run.stdout
        );
    }
    Ok(())
}
