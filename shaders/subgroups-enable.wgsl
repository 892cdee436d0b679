// The first lines of a module that uses subgroup operations (rows-subgroup.wgsl). Its row loops
// run per subgroup, so they are not uniform across the workgroup: the subgroup builtins are
// called in subgroup-uniform control flow, which WGSL's default analysis cannot see.
enable subgroups;
diagnostic(off, subgroup_uniformity);
