# GPAW build configuration used by scripts/install.sh: serial build (no MPI), g++ as compiler.
mpi = False
compiler = 'g++'
