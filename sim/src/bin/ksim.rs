use std::path::PathBuf;
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let path = PathBuf::from(
        args.get(1)
            .cloned()
            .unwrap_or("scenarios/default.toml".into()),
    );
    let seeds: Vec<u64> = args
        .get(2)
        .map(|s| {
            let (a, b) = s.split_once("..").unwrap_or((s, s));
            (a.parse().unwrap()..=b.parse().unwrap()).collect()
        })
        .unwrap_or(vec![1]);
    let sc = match ksim::scenario::load(&path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2)
        }
    };
    for seed in seeds {
        let r = ksim::run::run(&sc, seed);
        let st = r.stats();
        let v: Vec<String> = r
            .checks
            .violations
            .iter()
            .map(|v| format!("{}: {}", v.check, &v.message[..v.message.len().min(300)]))
            .collect();
        println!("seed {seed} {:?} wall={}ms sim={} msgs={} sent={} ack={} fail={} info={} polled={} faults={} {:?}", r.outcome, st.wall_ms, st.simulated_ms, st.messages, st.records_sent, st.records_acked, st.records_failed, st.records_indeterminate, st.records_polled, st.faults, v);
        r.write_outputs(&r.default_out_dir()).unwrap();
    }
}
