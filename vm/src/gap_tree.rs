//! Placeholder: the augmented interval tree is being written (see the module plan in docs/vm.md).
