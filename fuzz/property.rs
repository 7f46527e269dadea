//! The fuzz targets as property tests: `cargo test` of brook-wire and brook-raft includes this
//! file (with `#[path]`) and runs each target over its corpus in `fuzz/corpus/<target>/`, the
//! seeds its crate builds, and seeded random mutations of both, so every test run exercises
//! the same functions libFuzzer runs, deterministically. `write_seeds` refreshes the seed files
//! of the corpus from the seeds the crates build.

use std::path::PathBuf;

/// xorshift64*: deterministic, so a failure reproduces.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

/// Every file of `fuzz/corpus/<target>/`, in name order.
pub fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = corpus_dir(target);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    paths.sort();
    paths.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

/// Replaces the `seed-*` files of `fuzz/corpus/<target>/` with `seeds` (the other files there
/// are what fuzzing found and regressions, and stay).
pub fn write_seeds(target: &str, seeds: &[Vec<u8>]) {
    let dir = corpus_dir(target);
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("seed-") {
            std::fs::remove_file(&path).unwrap();
        }
    }
    for (i, seed) in seeds.iter().enumerate() {
        std::fs::write(dir.join(format!("seed-{i:04}")), seed).unwrap();
    }
}

/// Numbers that sit on the edges parsers check.
const EDGES: [u64; 8] = [0, 1, 0x7f, 0x80, 0xff, 0x7fff_ffff, 0xffff_ffff, u64::MAX];

/// One random edit: a byte overwritten, a bit flipped, a range cut out, a range repeated, or
/// an edge number written over 1, 2, 4 or 8 bytes.
fn mutate(rng: &mut Rng, input: &mut Vec<u8>) {
    if input.is_empty() {
        input.push(rng.next() as u8);
        return;
    }
    let at = rng.below(input.len());
    match rng.below(5) {
        0 => input[at] = rng.next() as u8,
        1 => input[at] ^= 1 << rng.below(8),
        2 => {
            let end = (at + 1 + rng.below(16)).min(input.len());
            input.drain(at..end);
        }
        3 => {
            let end = (at + 1 + rng.below(64)).min(input.len());
            let copy = input[at..end].to_vec();
            let to = rng.below(input.len() + 1);
            input.splice(to..to, copy);
        }
        _ => {
            let width = 1 << rng.below(4);
            let edge = EDGES[rng.below(EDGES.len())].to_be_bytes();
            for (i, b) in edge[8 - width..].iter().enumerate() {
                if let Some(slot) = input.get_mut(at + i) {
                    *slot = *b;
                }
            }
        }
    }
}

/// Runs `target` over `seeds` and the corpus of `name`, then `rounds` times over a random one
/// of them with one to eight random edits, and over as many inputs of random bytes.
pub fn check(name: &str, seeds: Vec<Vec<u8>>, rounds: usize, target: impl Fn(&[u8])) {
    let mut inputs = seeds;
    inputs.extend(corpus(name));
    assert!(!inputs.is_empty(), "{name}: no corpus");
    for input in &inputs {
        target(input);
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ name.len() as u64);
    for _ in 0..rounds {
        let mut input = inputs[rng.below(inputs.len())].clone();
        for _ in 0..=rng.below(8) {
            mutate(&mut rng, &mut input);
        }
        target(&input);
        let junk: Vec<u8> = (0..rng.below(256)).map(|_| rng.next() as u8).collect();
        target(&junk);
    }
}
