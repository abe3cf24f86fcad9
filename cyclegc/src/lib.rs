//! ouro-cyclegc: the cycle collector engine behind ouro's handles.
