# A package, so these test modules' names cannot clash with tests elsewhere in the tree.
