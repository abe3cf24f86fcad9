//! Reproducers from the independent review of the process-wide heap
//! (`sync`): each test is an attempt to break a rule of the protocol from
//! safe code, kept so that the fix stays fixed.
