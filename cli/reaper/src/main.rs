//! The reaper of one metrtest run: a thin entry point over [`metrtest_reaper`].

fn main() {
    std::process::exit(metrtest_reaper::main());
}
