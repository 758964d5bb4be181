//! The iteration order of a `java.util.HashSet<String>`.
//!
//! Confluent walks property names through a `HashSet` (`new HashSet<>(original keys)` then
//! `addAll(update keys)`), so the order of its differences, and so of the messages a rejected
//! registration returns, is the set's bucket order. Reproducing it keeps our output identical.

/// `String.hashCode()`: over UTF-16 code units, `h = 31 * h + c`, wrapping.
fn string_hash(text: &str) -> i32 {
    text.encode_utf16().fold(0i32, |hash, unit| {
        hash.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

/// `HashMap.hash()`: the high half folded into the low half.
fn spread(text: &str) -> u32 {
    let hash = string_hash(text) as u32;
    hash ^ (hash >> 16)
}

/// `HashMap.tableSizeFor()`: the power of two at or above `capacity`.
fn table_size_for(capacity: usize) -> usize {
    capacity.max(1).next_power_of_two()
}

/// The order in which a `HashMap` created with `initial_capacity` iterates `insertions`
/// (duplicates skipped). Within a bucket, entries keep insertion order, and a resize splits a
/// bucket without reordering it, so the final order is the insertion order stably sorted by
/// bucket index in the final table.
pub(crate) fn iteration_order<'a>(
    insertions: impl IntoIterator<Item = &'a str>,
    initial_capacity: usize,
) -> Vec<&'a str> {
    let mut capacity = table_size_for(initial_capacity);
    let mut entries: Vec<&'a str> = Vec::new();
    for key in insertions {
        if entries.contains(&key) {
            continue;
        }
        entries.push(key);
        // threshold = (int) (capacity * 0.75)
        if entries.len() > capacity * 3 / 4 {
            capacity *= 2;
        }
    }
    let mask = capacity - 1;
    entries.sort_by_key(|key| spread(key) as usize & mask);
    entries
}

/// The order of `new HashSet<>(first); set.addAll(second)`, the way Confluent gathers the
/// property names of two object schemas.
pub(crate) fn union_order<'a>(first: &[&'a str], second: &[&'a str]) -> Vec<&'a str> {
    // HashSet(Collection c): new HashMap<>(Math.max((int) (c.size() / .75f) + 1, 16))
    let initial_capacity = ((first.len() as f32 / 0.75) as usize + 1).max(16);
    iteration_order(first.iter().chain(second.iter()).copied(), initial_capacity)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_matches_java() {
        // Values of "...".hashCode() in Java.
        assert_eq!(string_hash(""), 0);
        assert_eq!(string_hash("a"), 97);
        assert_eq!(string_hash("foo"), 101_574);
        assert_eq!(string_hash("hello world"), 1_794_106_052);
    }

    #[test]
    fn small_sets_order_by_bucket() {
        // "bar".hashCode() = 97299 -> bucket 2 of 16, "foo" = 101574 -> bucket 7 of 16 after
        // spreading, so Java iterates bar before foo whatever the insertion order.
        assert_eq!(union_order(&["foo"], &["bar"]), vec!["bar", "foo"]);
        assert_eq!(union_order(&["bar"], &["foo"]), vec!["bar", "foo"]);
    }
}
