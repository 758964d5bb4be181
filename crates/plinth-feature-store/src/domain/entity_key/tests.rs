use super::*;

fn hex(key: &EntityKey) -> String {
    key.to_hex()
}

/// Golden bytes: if one of these fails, the storage format changed and every stored row became
/// unreachable. Do not update the expected bytes; add a new version instead.
#[test]
fn a_single_int64_key_has_fixed_bytes() {
    let key = encode(&[("driver_id", Value::Int64(1001))]).unwrap();
    assert_eq!(
        hex(&key),
        concat!(
            "01",                 // version
            "01000000",           // one join key
            "09000000",           // name length 9
            "6472697665725f6964", // "driver_id"
            "04",                 // int64
            "08000000",           // 8 bytes
            "e903000000000000",   // 1001
        )
    );
}

#[test]
fn a_compound_key_is_sorted_by_name_and_has_fixed_bytes() {
    let key = encode(&[
        ("zone", Value::String("eu".into())),
        ("a", Value::Int32(-1)),
        ("b", Value::Bytes(vec![0xff, 0x00])),
    ])
    .unwrap();
    assert_eq!(
        hex(&key),
        concat!(
            "01", "03000000", // version, three join keys
            "01000000", "61", "03", "04000000", "ffffffff", // a = int32 -1
            "01000000", "62", "02", "02000000", "ff00", // b = bytes ff00
            "04000000", "7a6f6e65", "01", "02000000", "6575", // zone = "eu"
        )
    );
}

#[test]
fn the_order_of_the_given_keys_does_not_matter() {
    let one = encode(&[("a", Value::Int64(1)), ("b", Value::String("x".into()))]).unwrap();
    let other = encode(&[("b", Value::String("x".into())), ("a", Value::Int64(1))]).unwrap();
    assert_eq!(one, other);
}

#[test]
fn int32_and_int64_of_the_same_number_are_different_keys() {
    let narrow = encode(&[("id", Value::Int32(7))]).unwrap();
    let wide = encode(&[("id", Value::Int64(7))]).unwrap();
    assert_ne!(narrow, wide);
}

#[test]
fn names_and_values_cannot_run_into_each_other() {
    let one = encode(&[("ab", Value::String("c".into()))]).unwrap();
    let other = encode(&[("a", Value::String("bc".into()))]).unwrap();
    assert_ne!(one, other);
}

#[test]
fn bad_keys_are_refused_with_the_reason() {
    let no_keys: [(&str, Value); 0] = [];
    assert_eq!(encode(&no_keys), Err(KeyError::Empty));
    assert_eq!(
        encode(&[("id", Value::Null)]),
        Err(KeyError::NullValue { name: "id".into() })
    );
    assert_eq!(
        encode(&[("id", Value::Float64(1.0))]),
        Err(KeyError::NotAKeyType {
            name: "id".into(),
            value_type: ValueType::Float64
        })
    );
    for value in [
        Value::Float32(1.0),
        Value::Bool(true),
        Value::UnixTimestamp(1),
    ] {
        assert!(matches!(
            encode(&[("id", value)]),
            Err(KeyError::NotAKeyType { .. })
        ));
    }
    assert_eq!(
        encode(&[("id", Value::Int64(1)), ("id", Value::Int64(2))]),
        Err(KeyError::DuplicateName { name: "id".into() })
    );
}

#[test]
fn decode_gives_back_the_sorted_pairs() {
    let pairs = vec![
        ("user".to_owned(), Value::String("ü".into())),
        ("id".to_owned(), Value::Int64(i64::MIN)),
        ("raw".to_owned(), Value::Bytes(vec![])),
        ("small".to_owned(), Value::Int32(i32::MAX)),
    ];
    let key = encode(&pairs).unwrap();
    let mut sorted = pairs.clone();
    sorted.sort_by(|left, right| left.0.cmp(&right.0));
    assert_eq!(key.decode().unwrap(), sorted);
    assert_eq!(EntityKey::from_bytes(key.clone().into_bytes()), key);
}

#[test]
fn decode_refuses_broken_bytes_without_panicking() {
    let key = encode(&[("id", Value::Int64(5))]).unwrap();
    let bytes = key.as_bytes();
    for cut in 0..bytes.len() {
        assert!(
            EntityKey::from_bytes(bytes[..cut].to_vec())
                .decode()
                .is_err()
        );
    }
    let mut trailing = bytes.to_vec();
    trailing.push(0);
    assert!(EntityKey::from_bytes(trailing).decode().is_err());
    let mut other_version = bytes.to_vec();
    other_version[0] = 2;
    assert!(EntityKey::from_bytes(other_version).decode().is_err());
    let huge_length = [1, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff];
    assert!(
        EntityKey::from_bytes(huge_length.to_vec())
            .decode()
            .is_err()
    );
}

#[test]
fn debug_shows_the_pairs() {
    let key = encode(&[("id", Value::Int64(5))]).unwrap();
    assert_eq!(format!("{key:?}"), r#"{"id": Int64(5)}"#);
    assert_eq!(
        format!("{:?}", EntityKey::from_bytes(vec![9])),
        "EntityKey(0x09)"
    );
}
