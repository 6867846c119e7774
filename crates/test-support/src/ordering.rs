use std::collections::BTreeMap;

use anyhow::{Result, ensure};

/// Checks what at-least-once delivery with per-key order promises, given every handling in
/// the order it happened as (key, sequence number): every key has sequences `0..per_key`, and
/// their first arrivals are in order (a record may come again, after a crash or a hand-over
/// before its commit, but never overtakes a later one the first time). Returns the number of
/// redeliveries.
pub fn check_per_key_order<'a>(
    handlings: impl IntoIterator<Item = (&'a str, u32)>,
    keys: usize,
    per_key: u32,
) -> Result<usize> {
    let mut by_key: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
    let mut total = 0;
    for (key, sequence) in handlings {
        by_key.entry(key).or_default().push(sequence);
        total += 1;
    }
    ensure!(
        by_key.len() == keys,
        "{} keys seen, {keys} expected",
        by_key.len()
    );
    let expected: Vec<u32> = (0..per_key).collect();
    for (key, sequences) in &by_key {
        let mut firsts = Vec::new();
        for sequence in sequences {
            if !firsts.contains(sequence) {
                firsts.push(*sequence);
            }
        }
        ensure!(
            firsts == expected,
            "{key} lost or reordered records: {sequences:?}"
        );
    }
    Ok(total - keys * per_key as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redeliveries_are_counted_and_reordering_or_loss_fails() -> Result<()> {
        let ok = [("a", 0), ("b", 0), ("a", 1), ("a", 0), ("a", 1), ("b", 1)];
        assert_eq!(check_per_key_order(ok, 2, 2)?, 2);
        assert!(check_per_key_order([("a", 1), ("a", 0)], 1, 2).is_err());
        assert!(check_per_key_order([("a", 0)], 1, 2).is_err());
        assert!(check_per_key_order([("a", 0), ("a", 1)], 2, 2).is_err());
        Ok(())
    }
}
