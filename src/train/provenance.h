/*
 * provenance.h — where a run came from, recorded beside its settings in
 * config.json: the commit the library was built from, the thread and rank counts and
 * the versions of the libraries that compute (OpenBLAS, oneDNN) and write
 * the records (cJSON), so every figure can be traced to what made it.
 */
#ifndef IB_TRAIN_PROVENANCE_H
#define IB_TRAIN_PROVENANCE_H

#include <cjson/cJSON.h>

/* config.json's key of the block; the configuration reader skips it. */
#define IB__PROVENANCE_KEY "provenance"

/* A new JSON object (the caller owns it; NULL without memory):
 * {"ibnet", "commit", "threads" (per rank), "ranks" (data-parallel ranks),
 * "mpi" (the MPI library when ranks > 1, else "none"), "openblas",
 * "onednn", "cjson"}. */
cJSON *ib__provenance_json(void);

#endif
