//! JSON text checked against a schema in one pass over its bytes, with no document built at all.
//!
//! For schemas made only of the common structural and scalar keywords (`type`, `properties`,
//! `required`, `additionalProperties`, `items`, `minItems`/`maxItems`, `enum`/`const` of strings,
//! booleans and null, `minLength`/`maxLength`, `minimum`/`maximum` and their exclusive forms,
//! `pattern`, `format`, plus annotations), the validator walks the text and the compiled schema
//! together: the JSON grammar is checked as it goes, strings are compared in place, and only the
//! strings under `pattern` or `format` are handed, one by one, to a `jsonschema` validator of those two
//! keywords, so their meaning is exactly `jsonschema`'s.
//!
//! The answer is one-sided by design: `true` means the text is JSON that `jsonschema` accepts;
//! `false` means "not shown valid" (invalid, not JSON, or a case this path leaves alone: a float
//! where only integers are allowed, a number next to a bound, a lone surrogate, deep nesting). The
//! caller then takes the full path, which decides and explains. A schema using any other keyword
//! does not compile here at all.

use serde_json::{Map, Value};

/// A compiled schema for [`StreamValidator::is_valid`].
#[derive(Debug)]
pub(crate) struct StreamValidator {
    root: Node,
}

#[derive(Debug, Default)]
enum Node {
    /// `true`, `{}` or annotations only.
    #[default]
    Any,
    /// `false`.
    Never,
    Check(Box<Check>),
}

/// The JSON types, as bits of [`Check::types`].
const NULL: u8 = 1;
const BOOLEAN: u8 = 2;
/// A number written without fraction or exponent.
const INTEGER: u8 = 4;
/// Any other number.
const FRACTION: u8 = 8;
const STRING: u8 = 16;
const ARRAY: u8 = 32;
const OBJECT: u8 = 64;
const ALL_TYPES: u8 = 127;

#[derive(Debug, Default)]
struct Check {
    types: u8,
    /// `enum` / `const`: the allowed values (strings, booleans, null only).
    allowed: Option<Allowed>,
    min_length: Option<usize>,
    max_length: Option<usize>,
    /// `pattern` and `format`, checked by `jsonschema` itself on each string.
    string_check: Option<jsonschema::Validator>,
    /// Numeric bounds: (bound, exclusive).
    minimum: Vec<(f64, bool)>,
    maximum: Vec<(f64, bool)>,
    properties: Vec<Property>,
    /// Bits of the properties that must be present.
    required: u64,
    additional: Node,
    items: Node,
    min_items: Option<usize>,
    max_items: Option<usize>,
}

#[derive(Debug, Default)]
struct Allowed {
    strings: Vec<String>,
    null: bool,
    booleans: [bool; 2],
}

#[derive(Debug)]
struct Property {
    name: String,
    /// `None`: named only by `required`, so its value is checked by `additionalProperties`.
    node: Option<Node>,
    bit: u64,
}

/// Keywords that only annotate: they never make a document invalid.
const ANNOTATIONS: &[&str] = &[
    "$schema",
    "$id",
    "id",
    "$comment",
    "title",
    "description",
    "default",
    "examples",
    "readOnly",
    "writeOnly",
    "deprecated",
    "definitions",
    "$defs",
];

/// The deepest nesting this path walks (`serde_json` refuses beyond 128).
const MAX_DEPTH: usize = 100;

impl StreamValidator {
    /// Compiles `schema`, or `None` when it uses a keyword this path does not handle. `string_check`
    /// compiles the `pattern`/`format` part of a schema with the caller's `jsonschema` options.
    pub(crate) fn compile(
        schema: &Value,
        draft4: bool,
        string_check: &dyn Fn(&Value) -> Option<jsonschema::Validator>,
    ) -> Option<Self> {
        let compiler = Compiler {
            draft4,
            string_check,
        };
        let root = compiler.node(schema, 0)?;
        Some(Self { root })
    }

    /// Whether `text` is shown to be valid JSON that satisfies the schema (see the module doc: `false`
    /// is not a verdict).
    pub(crate) fn is_valid(&self, text: &str) -> bool {
        let mut cursor = Cursor {
            bytes: text.as_bytes(),
            text,
            pos: 0,
        };
        cursor.whitespace();
        if cursor.value(&self.root, 0).is_err() {
            return false;
        }
        cursor.whitespace();
        cursor.pos == cursor.bytes.len()
    }
}

struct Compiler<'c> {
    /// Draft 4: boolean subschemas (but `additionalProperties`) and numeric exclusive bounds are not
    /// its grammar; such schemas are left to the full path.
    draft4: bool,
    string_check: &'c dyn Fn(&Value) -> Option<jsonschema::Validator>,
}

impl Compiler<'_> {
    fn node(&self, schema: &Value, depth: usize) -> Option<Node> {
        if depth > MAX_DEPTH {
            return None;
        }
        let object = match schema {
            Value::Bool(_) if self.draft4 => return None,
            Value::Bool(true) => return Some(Node::Any),
            Value::Bool(false) => return Some(Node::Never),
            Value::Object(object) => object,
            _ => return None,
        };
        let mut check = Check {
            types: ALL_TYPES,
            ..Check::default()
        };
        let mut constrained = false;
        let mut string_keywords = Map::new();
        let mut required: Vec<&str> = Vec::new();
        for (keyword, value) in object {
            if ANNOTATIONS.contains(&keyword.as_str()) || keyword.starts_with("x-") {
                continue;
            }
            constrained = true;
            match keyword.as_str() {
                "type" => check.types = types(value)?,
                "enum" => check.allowed = Some(allowed(value.as_array()?)?),
                "const" => check.allowed = Some(allowed(std::slice::from_ref(value))?),
                "minLength" => check.min_length = Some(usize::try_from(value.as_u64()?).ok()?),
                "maxLength" => check.max_length = Some(usize::try_from(value.as_u64()?).ok()?),
                "pattern" | "format" => {
                    string_keywords.insert(keyword.clone(), value.clone());
                }
                "exclusiveMinimum" | "exclusiveMaximum" if self.draft4 => return None,
                "minimum" => check.minimum.push((bound(value)?, false)),
                "exclusiveMinimum" => check.minimum.push((bound(value)?, true)),
                "maximum" => check.maximum.push((bound(value)?, false)),
                "exclusiveMaximum" => check.maximum.push((bound(value)?, true)),
                "properties" => {
                    for (name, subschema) in value.as_object()? {
                        let node = self.node(subschema, depth + 1)?;
                        check.properties.push(Property {
                            name: name.clone(),
                            node: Some(node),
                            bit: 0,
                        });
                    }
                }
                "required" => {
                    for name in value.as_array()? {
                        required.push(name.as_str()?);
                    }
                }
                "additionalProperties" => {
                    check.additional = match value {
                        Value::Bool(false) => Node::Never,
                        Value::Bool(true) => Node::Any,
                        _ => self.node(value, depth + 1)?,
                    };
                }
                "items" if value.is_object() || value.is_boolean() => {
                    check.items = self.node(value, depth + 1)?;
                }
                "minItems" => check.min_items = Some(usize::try_from(value.as_u64()?).ok()?),
                "maxItems" => check.max_items = Some(usize::try_from(value.as_u64()?).ok()?),
                _ => return None,
            }
        }
        for name in required {
            let index = match check.properties.iter().position(|p| p.name == name) {
                Some(index) => index,
                None => {
                    check.properties.push(Property {
                        name: name.to_owned(),
                        node: None,
                        bit: 0,
                    });
                    check.properties.len() - 1
                }
            };
            if index >= 64 {
                return None;
            }
            let bit = 1u64 << index;
            check.properties[index].bit = bit;
            check.required |= bit;
        }
        if !string_keywords.is_empty() {
            check.string_check = Some((self.string_check)(&Value::Object(string_keywords))?);
        }
        Some(if constrained {
            Node::Check(Box::new(check))
        } else {
            Node::Any
        })
    }
}

fn types(value: &Value) -> Option<u8> {
    let one = |name: &Value| -> Option<u8> {
        Some(match name.as_str()? {
            "null" => NULL,
            "boolean" => BOOLEAN,
            "integer" => INTEGER,
            "number" => INTEGER | FRACTION,
            "string" => STRING,
            "array" => ARRAY,
            "object" => OBJECT,
            _ => return None,
        })
    };
    match value {
        Value::Array(names) => names
            .iter()
            .try_fold(0, |bits, name| Some(bits | one(name)?)),
        name => one(name),
    }
}

fn allowed(values: &[Value]) -> Option<Allowed> {
    let mut allowed = Allowed::default();
    for value in values {
        match value {
            Value::String(text) => allowed.strings.push(text.clone()),
            Value::Null => allowed.null = true,
            Value::Bool(flag) => allowed.booleans[usize::from(*flag)] = true,
            // Numbers compare by value across representations, containers structurally: left to the
            // full path.
            _ => return None,
        }
    }
    Some(allowed)
}

/// A numeric bound, when it is exactly an `f64` (not a draft 4 boolean, not a huge integer).
fn bound(value: &Value) -> Option<f64> {
    let number = value.as_number()?;
    if let Some(int) = number.as_i64() {
        return (int.unsigned_abs() <= MAX_EXACT).then_some(int as f64);
    }
    if number.is_u64() {
        return None;
    }
    number.as_f64().filter(|float| float.is_finite())
}

/// Integers up to 2^53 are exact as `f64`.
const MAX_EXACT: u64 = 1 << 53;

/// "Not shown valid": invalid, not JSON, or left to the full path.
struct Unproven;

type Step = Result<(), Unproven>;

struct Cursor<'t> {
    bytes: &'t [u8],
    text: &'t str,
    pos: usize,
}

/// A string token: its raw content (between the quotes) and whether it holds escapes.
struct StringToken {
    start: usize,
    end: usize,
    escaped: bool,
}

impl<'t> Cursor<'t> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.pos += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Step {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(Unproven)
        }
    }

    fn value(&mut self, node: &Node, depth: usize) -> Step {
        match node {
            Node::Any => self.skip(depth),
            Node::Never => Err(Unproven),
            Node::Check(check) => self.checked(check, depth),
        }
    }

    fn checked(&mut self, check: &Check, depth: usize) -> Step {
        let allows = |bits: u8| -> Step {
            if check.types & bits == 0 {
                Err(Unproven)
            } else {
                Ok(())
            }
        };
        match self.peek().ok_or(Unproven)? {
            b'{' => {
                allows(OBJECT)?;
                if check.allowed.is_some() {
                    return Err(Unproven);
                }
                self.object(check, depth)
            }
            b'[' => {
                allows(ARRAY)?;
                if check.allowed.is_some() {
                    return Err(Unproven);
                }
                self.array(check, depth)
            }
            b'"' => {
                allows(STRING)?;
                let token = self.string()?;
                self.check_string(check, &token)
            }
            b't' | b'f' => {
                allows(BOOLEAN)?;
                let flag = self.peek() == Some(b't');
                self.literal(if flag { b"true" } else { b"false" })?;
                match &check.allowed {
                    Some(allowed) if !allowed.booleans[usize::from(flag)] => Err(Unproven),
                    _ => Ok(()),
                }
            }
            b'n' => {
                allows(NULL)?;
                self.literal(b"null")?;
                match &check.allowed {
                    Some(allowed) if !allowed.null => Err(Unproven),
                    _ => Ok(()),
                }
            }
            b'-' | b'0'..=b'9' => {
                if check.allowed.is_some() {
                    return Err(Unproven);
                }
                self.number(check)
            }
            _ => Err(Unproven),
        }
    }

    fn object(&mut self, check: &Check, depth: usize) -> Step {
        if depth >= MAX_DEPTH {
            return Err(Unproven);
        }
        self.pos += 1;
        let mut seen = 0u64;
        // Documents of one producer list their keys in one order: try the property after the last
        // one found before searching.
        let mut guess = 0usize;
        self.whitespace();
        if self.peek() == Some(b'}') {
            self.pos += 1;
        } else {
            loop {
                self.whitespace();
                if self.peek() != Some(b'"') {
                    return Err(Unproven);
                }
                let key = self.string()?;
                self.whitespace();
                self.expect(b':')?;
                self.whitespace();
                let decoded;
                let name: &[u8] = if key.escaped {
                    decoded = self.decode(&key)?;
                    decoded.as_bytes()
                } else {
                    &self.bytes[key.start..key.end]
                };
                let at = match check.properties.get(guess) {
                    Some(property) if same_name(property.name.as_bytes(), name) => Some(guess),
                    _ => check
                        .properties
                        .iter()
                        .position(|p| same_name(p.name.as_bytes(), name)),
                };
                let property = at.map(|at| {
                    guess = at + 1;
                    &check.properties[at]
                });
                match property {
                    Some(property) => {
                        seen |= property.bit;
                        self.value(
                            property.node.as_ref().unwrap_or(&check.additional),
                            depth + 1,
                        )?;
                    }
                    None => self.value(&check.additional, depth + 1)?,
                }
                if self.closed_after_member(b'}')? {
                    break;
                }
            }
        }
        if seen & check.required == check.required {
            Ok(())
        } else {
            Err(Unproven)
        }
    }

    fn array(&mut self, check: &Check, depth: usize) -> Step {
        if depth >= MAX_DEPTH {
            return Err(Unproven);
        }
        self.pos += 1;
        let mut count = 0usize;
        self.whitespace();
        if self.peek() == Some(b']') {
            self.pos += 1;
        } else {
            loop {
                self.whitespace();
                self.value(&check.items, depth + 1)?;
                count += 1;
                if self.closed_after_member(b']')? {
                    break;
                }
            }
        }
        let too_few = check.min_items.is_some_and(|min| count < min);
        let too_many = check.max_items.is_some_and(|max| count > max);
        if too_few || too_many {
            Err(Unproven)
        } else {
            Ok(())
        }
    }

    /// After a member or element: `true` at the container's closing bracket, `false` after a comma.
    fn closed_after_member(&mut self, close: u8) -> Result<bool, Unproven> {
        self.whitespace();
        match self.peek() {
            Some(b',') => {
                self.pos += 1;
                Ok(false)
            }
            Some(byte) if byte == close => {
                self.pos += 1;
                Ok(true)
            }
            _ => Err(Unproven),
        }
    }

    fn check_string(&self, check: &Check, token: &StringToken) -> Step {
        let needs_text = check.allowed.is_some()
            || check.min_length.is_some()
            || check.max_length.is_some()
            || check.string_check.is_some();
        if !needs_text {
            return Ok(());
        }
        let decoded;
        let text: &str = if token.escaped {
            decoded = self.decode(token)?;
            &decoded
        } else {
            self.text.get(token.start..token.end).ok_or(Unproven)?
        };
        if let Some(allowed) = &check.allowed
            && !allowed
                .strings
                .iter()
                .any(|s| same_name(s.as_bytes(), text.as_bytes()))
        {
            return Err(Unproven);
        }
        // Characters are at most the bytes and at least a quarter of them: count only when that
        // does not settle it.
        let settled = check.max_length.is_none_or(|max| text.len() <= max)
            && check
                .min_length
                .is_none_or(|min| text.len().div_ceil(4) >= min);
        if !settled {
            let length = text.chars().count();
            if check.min_length.is_some_and(|min| length < min)
                || check.max_length.is_some_and(|max| length > max)
            {
                return Err(Unproven);
            }
        }
        if let Some(validator) = &check.string_check
            && !STRING_VALUE.with_borrow_mut(|value| {
                if let Value::String(scratch) = value {
                    scratch.clear();
                    scratch.push_str(text);
                }
                validator.is_valid(value)
            })
        {
            return Err(Unproven);
        }
        Ok(())
    }

    /// Scans a string token from its opening quote, checking its escapes.
    fn string(&mut self) -> Result<StringToken, Unproven> {
        self.pos += 1;
        let start = self.pos;
        let mut escaped = false;
        loop {
            self.pos = scan_plain(self.bytes, self.pos);
            match self.peek().ok_or(Unproven)? {
                b'"' => {
                    let end = self.pos;
                    self.pos += 1;
                    return Ok(StringToken {
                        start,
                        end,
                        escaped,
                    });
                }
                b'\\' => {
                    escaped = true;
                    self.pos += 1;
                    match self.peek().ok_or(Unproven)? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.pos += 1,
                        b'u' => {
                            let unit = self.hex4()?;
                            if (0xDC00..0xE000).contains(&unit) {
                                // A lone low surrogate: `serde_json` refuses it.
                                return Err(Unproven);
                            }
                            if (0xD800..0xDC00).contains(&unit) {
                                if self.bytes.get(self.pos..self.pos + 2) != Some(b"\\u") {
                                    return Err(Unproven);
                                }
                                self.pos += 1;
                                let low = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&low) {
                                    return Err(Unproven);
                                }
                            }
                        }
                        _ => return Err(Unproven),
                    }
                }
                // A control character: not allowed unescaped.
                _ => return Err(Unproven),
            }
        }
    }

    /// Reads `uXXXX` (the cursor on the `u`) and returns the code unit.
    fn hex4(&mut self) -> Result<u32, Unproven> {
        let unit = hex(self.bytes.get(self.pos + 1..self.pos + 5).ok_or(Unproven)?)?;
        self.pos += 5;
        Ok(unit)
    }

    /// The text of a string token with escapes, unescaped (the token was checked by [`Self::string`]).
    fn decode(&self, token: &StringToken) -> Result<String, Unproven> {
        let raw = self.text.get(token.start..token.end).ok_or(Unproven)?;
        let mut out = String::with_capacity(raw.len());
        let mut rest = raw;
        while let Some(at) = rest.find('\\') {
            out.push_str(&rest[..at]);
            let escape = &rest[at + 1..];
            let (decoded, used) = match escape.as_bytes().first().ok_or(Unproven)? {
                b'"' => ('"', 1),
                b'\\' => ('\\', 1),
                b'/' => ('/', 1),
                b'b' => ('\u{8}', 1),
                b'f' => ('\u{c}', 1),
                b'n' => ('\n', 1),
                b'r' => ('\r', 1),
                b't' => ('\t', 1),
                b'u' => {
                    let bytes = escape.as_bytes();
                    let unit = hex(bytes.get(1..5).ok_or(Unproven)?)?;
                    if (0xD800..0xDC00).contains(&unit) {
                        let low = hex(bytes.get(7..11).ok_or(Unproven)?)?;
                        let code = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                        (char::from_u32(code).ok_or(Unproven)?, 11)
                    } else {
                        (char::from_u32(unit).ok_or(Unproven)?, 5)
                    }
                }
                _ => return Err(Unproven),
            };
            out.push(decoded);
            rest = escape.get(used..).ok_or(Unproven)?;
        }
        out.push_str(rest);
        Ok(out)
    }

    fn literal(&mut self, word: &[u8]) -> Step {
        if self.bytes.get(self.pos..self.pos + word.len()) == Some(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(Unproven)
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self, check: &Check) -> Step {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(Unproven),
        }
        let mut integer = true;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            integer = false;
            if self.digits() == 0 {
                return Err(Unproven);
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            integer = false;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(Unproven);
            }
        }
        let token = self.text.get(start..self.pos).ok_or(Unproven)?;
        let bounded = !check.minimum.is_empty() || !check.maximum.is_empty();
        if integer {
            if check.types & INTEGER == 0 {
                return Err(Unproven);
            }
            // `-0` and integers beyond 64 bits are floats to `serde_json` (over 300 digits, out of
            // range): fine where any number is, left to the full path where only integers are.
            let odd = token == "-0" || token.len() > 19;
            if odd && (check.types & FRACTION == 0 || token.len() > 300) {
                return Err(Unproven);
            }
            if !bounded {
                return Ok(());
            }
            // At most 15 digits: exact in an `f64`, no overflow.
            let digits = token.strip_prefix('-').unwrap_or(token);
            if odd || digits.len() > 15 {
                return Err(Unproven);
            }
            let magnitude = digits
                .bytes()
                .fold(0i64, |value, digit| value * 10 + i64::from(digit - b'0'));
            let value = if token.starts_with('-') {
                -magnitude
            } else {
                magnitude
            };
            within_bounds(check, value as f64, true)
        } else {
            if check.types & FRACTION == 0 {
                return Err(Unproven);
            }
            // Only an exponent or over 300 digits can leave `f64`'s range (`serde_json` refuses that).
            let exponent = token.bytes().any(|b| b == b'e' || b == b'E');
            if !exponent && token.len() <= 300 && (!bounded || at_least_zero(check, token)) {
                return Ok(());
            }
            let value: f64 = token.parse().map_err(|_| Unproven)?;
            if !value.is_finite() {
                return Err(Unproven);
            }
            within_bounds(check, value, false)
        }
    }

    /// Skips one value of any shape, checking its grammar.
    fn skip(&mut self, depth: usize) -> Step {
        match self.peek().ok_or(Unproven)? {
            b'{' | b'[' => self.checked(&ANY_CHECK, depth),
            b'"' => self.string().map(drop),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number(&ANY_CHECK),
            _ => Err(Unproven),
        }
    }
}

thread_local! {
    /// The string handed to `pattern`/`format` checks, reused so a check allocates nothing.
    static STRING_VALUE: std::cell::RefCell<Value> = const {
        std::cell::RefCell::new(Value::String(String::new()))
    };
}

/// A check that allows everything: used to walk values nobody constrains.
static ANY_CHECK: Check = Check {
    types: ALL_TYPES,
    allowed: None,
    min_length: None,
    max_length: None,
    string_check: None,
    minimum: Vec::new(),
    maximum: Vec::new(),
    properties: Vec::new(),
    required: 0,
    additional: Node::Any,
    items: Node::Any,
    min_items: None,
    max_items: None,
};

/// Whether two names are equal; names of up to eight bytes are compared as one word (no call).
#[inline]
fn same_name(left: &[u8], right: &[u8]) -> bool {
    if left.len() != right.len() {
        return false;
    }
    if left.len() <= 8 {
        let mut words = [[0u8; 8]; 2];
        words[0][..left.len()].copy_from_slice(left);
        words[1][..right.len()].copy_from_slice(right);
        return words[0] == words[1];
    }
    left == right
}

/// Whether the only bounds are `minimum: 0` and the token has no sign: then it is within them
/// without reading its value (the usual "amount" or "price" field).
fn at_least_zero(check: &Check, token: &str) -> bool {
    check.maximum.is_empty()
        && check
            .minimum
            .iter()
            .all(|&(bound, exclusive)| bound == 0.0 && !exclusive)
        && !token.starts_with('-')
}

/// The code unit of the four hex digits of a `\u` escape.
fn hex(digits: &[u8]) -> Result<u32, Unproven> {
    digits.iter().try_fold(0u32, |unit, &digit| {
        Ok(unit * 16 + char::from(digit).to_digit(16).ok_or(Unproven)?)
    })
}

/// Whether `value` is within every bound. A float within a relative 1e-12 of a bound is left to the
/// full path: `serde_json`'s float reading may differ from Rust's in the last bit.
fn within_bounds(check: &Check, value: f64, exact: bool) -> Step {
    let near = |bound: f64| !exact && (value - bound).abs() <= bound.abs().max(1.0) * 1e-12;
    for &(bound, exclusive) in &check.minimum {
        if near(bound) || value < bound || (exclusive && value == bound) {
            return Err(Unproven);
        }
    }
    for &(bound, exclusive) in &check.maximum {
        if near(bound) || value > bound || (exclusive && value == bound) {
            return Err(Unproven);
        }
    }
    Ok(())
}

/// The position of the first byte at or after `pos` that ends a plain run inside a string: a quote, a
/// backslash or a control character (or the end). `memchr` finds the first two with SIMD; the run
/// before it is then checked for control characters in one branch-free (vectorized) pass.
fn scan_plain(bytes: &[u8], pos: usize) -> usize {
    // Most keys and values are short: the first 16 bytes are looked at eight at a time in registers
    // before calling out.
    let mut pos = pos;
    for _ in 0..2 {
        let Some(chunk) = bytes.get(pos..pos + 8) else {
            break;
        };
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        if let Some(offset) = first_special(u64::from_le_bytes(word)) {
            return pos + offset;
        }
        pos += 8;
    }
    let rest = bytes.get(pos..).unwrap_or_default();
    let end = memchr::memchr2(b'"', b'\\', rest).unwrap_or(rest.len());
    let run = &rest[..end];
    if run
        .iter()
        .fold(0u8, |any, &byte| any | u8::from(byte < 0x20))
        == 0
    {
        return pos + end;
    }
    pos + run.iter().position(|&byte| byte < 0x20).unwrap_or(end)
}

/// The index of the first quote, backslash or control byte of eight little-endian bytes. Each test
/// flags a byte's high bit; a flag above a true hit can be false (a borrow), the lowest one never is,
/// so the lowest flag of the three is the first such byte.
fn first_special(word: u64) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let quote = word ^ (ONES * u64::from(b'"'));
    let backslash = word ^ (ONES * u64::from(b'\\'));
    let zero_quote = quote.wrapping_sub(ONES) & !quote;
    let zero_backslash = backslash.wrapping_sub(ONES) & !backslash;
    let control = word.wrapping_sub(ONES * 0x20) & !word;
    let hits = (zero_quote | zero_backslash | control) & HIGHS;
    (hits != 0).then(|| (hits.trailing_zeros() / 8) as usize)
}
