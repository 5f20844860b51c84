//! The seeded routing simulation: our policy and the baseline styles from routing.md on the
//! same traffic, printed as a table per scenario.
//!
//!     cargo bench --bench routing_sim            # both scenarios
//!     cargo bench --bench routing_sim -- small   # 300 employees only

use std::time::Instant;

use allhands::routing::simulate::{PolicyKind, Scenario, generate, run, table};

fn main() {
    let only: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let scenarios = [("small", Scenario::small()), ("large", Scenario::large())];
    for (key, scenario) in scenarios {
        if only.as_deref().is_some_and(|o| o != key) {
            continue;
        }
        let traffic = generate(&scenario);
        let mut rows = Vec::new();
        let mut timings = Vec::new();
        for policy in PolicyKind::ALL {
            let started = Instant::now();
            let results = run(&traffic, policy);
            eprintln!(
                "{}: {:.1} s",
                policy.name(),
                started.elapsed().as_secs_f64()
            );
            timings.push((policy.name(), started.elapsed()));
            rows.push((policy, results));
        }
        println!("{}", table(&scenario, &rows));
        for (name, took) in timings {
            println!("  {name}: simulated in {:.1} s", took.as_secs_f64());
        }
        println!();
    }
}
