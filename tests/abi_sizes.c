/*
 * abi_sizes.c — prints the size of every public struct the Python binding
 * mirrors with ctypes (python/ibnet/), and the offset of the last field it
 * reads of the structs it mirrors only in part, one "name value" per line.
 * The binding's test test_struct_mirrors_have_the_c_layout compares them
 * with its mirrors, so a new field in one of these structs fails the
 * python_binding test until the mirror follows (docs/packaging.md).
 */
#include "ibnet.h"

#include <stddef.h>
#include <stdio.h>

#define SIZE(T) printf("%s %zu\n", #T, sizeof(T))
#define OFFSET(T, f) printf("%s.%s %zu\n", #T, #f, offsetof(T, f))

int main(void)
{
    SIZE(ib_model_layer_info);
    SIZE(ib_model_tensor);
    SIZE(ib_net_options);
    SIZE(ib_calibration);
    SIZE(ib_eval_result);
    SIZE(ib_dataset);
    SIZE(ib_load_options);
    SIZE(ib_train_progress);
    OFFSET(ib_epoch_report, ce);
    SIZE(ib_train_callbacks);
    SIZE(ib_attack_config);
    SIZE(ib_attack_row);
    SIZE(ib_attack_result);
    SIZE(ib_attack_head);
    SIZE(ib_pixel_norm);
    SIZE(ib_mi_var);
    SIZE(ib_mi_options);
    SIZE(ib_mi_result);
    SIZE(ib_activations);
    SIZE(ib_bottleneck);
    SIZE(ib_decoder_data);
    OFFSET(ib_model_out, bn_name);
    return 0;
}
