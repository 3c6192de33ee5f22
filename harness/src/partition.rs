//! `--partition hash:K/N`: split a plan's cells into N shards so that N CI jobs run every cell
//! exactly once between them. A cell goes to the shard picked by a fixed hash of its id (xxHash64,
//! seed 0), so the split depends only on the cell ids: the same on every machine, every Rust
//! release and every run, and a cell keeps its shard when other cells are added to the matrix.

use crate::plan::Plan;
use std::fmt;

/// One shard out of `count`; `shard` counts from 1, like nextest's `--partition hash:M/N`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Partition {
    pub shard: u32,
    pub count: u32,
}

const FORM: &str = "write it as hash:K/N with 1 <= K <= N, e.g. hash:2/4";

impl Partition {
    /// Parse `hash:K/N`. Used as clap's value parser, so a bad value exits 2 naming the flag.
    pub fn parse(given: &str) -> Result<Partition, String> {
        let Some(rest) = given.strip_prefix("hash:") else {
            let why = match given.split_once(':') {
                Some((kind, _)) => format!("'{kind}' partitioning is not supported, only hash"),
                None => "the partition kind is missing".to_string(),
            };
            return Err(format!("{why}; {FORM}"));
        };
        let Some((k, n)) = rest.split_once('/') else {
            return Err(format!("'{rest}' is not K/N; {FORM}"));
        };
        let number = |s: &str, what: &str| {
            s.parse::<u32>()
                .map_err(|_| format!("{what} '{s}' is not a whole number; {FORM}"))
        };
        let (shard, count) = (number(k, "shard")?, number(n, "shard count")?);
        if count == 0 {
            return Err(format!("the shard count is 0; {FORM}"));
        }
        if shard == 0 || shard > count {
            return Err(format!(
                "shard {shard} is outside 1..={count} (shards count from 1); {FORM}"
            ));
        }
        Ok(Partition { shard, count })
    }

    /// The shard (1-based) of `count` that a cell id belongs to.
    pub fn shard_of(cell_id: &str, count: u32) -> u32 {
        let hash = xxhash_rust::xxh64::xxh64(cell_id.as_bytes(), 0);
        (hash % u64::from(count)) as u32 + 1
    }

    pub fn contains(&self, cell_id: &str) -> bool {
        Self::shard_of(cell_id, self.count) == self.shard
    }

    /// Keep only this shard's cells (and excluded combinations, so each is listed once across
    /// the shards). A shard left with no cell is refused: a job that runs nothing has not passed.
    pub fn select(&self, plan: &mut Plan) -> Result<(), String> {
        let total = plan.cells.len();
        plan.cells.retain(|c| self.contains(&c.id));
        plan.excluded.retain(|e| self.contains(&e.cell.id()));
        if plan.cells.is_empty() {
            return Err(format!(
                "--partition {self}: this shard holds none of the matrix's {total} cell(s); \
                 use fewer shards, or list the shards that hold cells with \
                 `harness plan --output github-matrix --shards {}`",
                self.count
            ));
        }
        Ok(())
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "hash:{}/{}", self.shard, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_the_hash_form() {
        assert_eq!(
            Partition::parse("hash:2/4"),
            Ok(Partition { shard: 2, count: 4 })
        );
        assert_eq!(
            Partition::parse("hash:1/1").unwrap().to_string(),
            "hash:1/1"
        );
    }

    #[test]
    fn refuses_every_other_form_with_the_fix() {
        for (bad, why) in [
            ("count:1/2", "'count' partitioning is not supported"),
            ("1/2", "kind is missing"),
            ("hash:1", "is not K/N"),
            ("hash:0/3", "outside 1..=3"),
            ("hash:4/3", "outside 1..=3"),
            ("hash:1/0", "count is 0"),
            ("hash:a/3", "shard 'a' is not a whole number"),
            ("hash:1/-3", "shard count '-3' is not a whole number"),
            ("hash: 1/3", "shard ' 1' is not a whole number"),
        ] {
            let err = Partition::parse(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
            assert!(err.ends_with(FORM), "{bad}: {err}");
        }
    }

    /// Pinned values: the split must not change between builds, or a re-run shard would run
    /// other cells than the first attempt.
    #[test]
    fn the_hash_is_stable() {
        assert_eq!(xxhash_rust::xxh64::xxh64(b"", 0), 0xef46_db37_51d8_e999);
        let id = "talos-basic_cilium-1.18.4_talos-v1.11.5_k8s-1.34.1";
        let shards: Vec<u32> = (1..=8).map(|n| Partition::shard_of(id, n)).collect();
        let again: Vec<u32> = (1..=8).map(|n| Partition::shard_of(id, n)).collect();
        assert_eq!(shards, again);
        assert_eq!(shards[0], 1);
    }

    proptest! {
        /// Every id lands in exactly one of the N shards, whatever the ids and N.
        #[test]
        fn every_cell_is_in_exactly_one_shard(
            ids in proptest::collection::btree_set("[a-z0-9._-]{1,60}", 0..60),
            count in 1u32..=16,
        ) {
            for id in &ids {
                let holders: Vec<u32> = (1..=count)
                    .filter(|&shard| Partition { shard, count }.contains(id))
                    .collect();
                prop_assert_eq!(holders.len(), 1, "{} is in shards {:?}", id, holders);
                prop_assert_eq!(holders[0], Partition::shard_of(id, count));
            }
        }
    }
}
