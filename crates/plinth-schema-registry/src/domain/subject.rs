//! Subject names.

use plinth_proto::ids::Subject;

/// Longest subject name accepted, in bytes.
pub const MAX_SUBJECT_LEN: usize = 255;

/// Why a subject name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubjectNameError {
    /// The name is empty.
    #[error("subject name is empty; give a name such as `orders-value`")]
    Empty,
    /// The name is longer than [`MAX_SUBJECT_LEN`].
    #[error("subject name is {len} bytes long; the limit is {MAX_SUBJECT_LEN}")]
    TooLong {
        /// Length in bytes.
        len: usize,
    },
    /// The name holds a control character.
    #[error("subject name contains a control character; use printable characters only")]
    ControlCharacter,
}

/// Checks that a subject name is usable: non-empty, at most 255 bytes, no control characters.
pub fn validate_subject(subject: &Subject) -> Result<(), SubjectNameError> {
    let name = subject.as_str();
    if name.is_empty() {
        return Err(SubjectNameError::Empty);
    }
    if name.len() > MAX_SUBJECT_LEN {
        return Err(SubjectNameError::TooLong { len: name.len() });
    }
    if name.chars().any(char::is_control) {
        return Err(SubjectNameError::ControlCharacter);
    }
    Ok(())
}
