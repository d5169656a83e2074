/* sim_gen.h — `tenantsim gen`, the fixture generator (sim_gen.c, tests/sim/README.md format).
 *
 * main() calls gen_main(argc - 1, argv + 1) for `tenantsim gen ...`: argv[0] is "gen" and the
 * options follow from argv[1]. Returns the process exit code; writes the state JSON to stdout.
 */
#ifndef TENANTSIM_SIM_GEN_H
#define TENANTSIM_SIM_GEN_H

int gen_main(int argc, char **argv);

#endif
