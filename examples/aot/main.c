/* Classify four 8x8 digits with the ahead-of-time compiled MLP: no Python at run time. */
#include <stdio.h>
#include "mlp.h"

int main(int argc, char **argv) {
    static MLP_INPUT0_T pixels[MLP_INPUT0_SIZE];
    static MLP_OUTPUT0_T probs[MLP_OUTPUT0_SIZE];
    const char *path = argc > 1 ? argv[1] : "build/digits.bin";
    FILE *f = fopen(path, "rb");
    if (!f || fread(pixels, 1, MLP_INPUT0_BYTES, f) != MLP_INPUT0_BYTES) {
        fprintf(stderr, "cannot read %s\n", path);
        return 1;
    }
    fclose(f);
    const void *inputs[] = {pixels};
    void *outputs[] = {probs};
    int code = mlp_run(inputs, outputs);
    if (code != 0) {
        fprintf(stderr, "mlp_run failed with code %d\n", code);
        return 1;
    }
    for (int i = 0; i < 4; i++) {
        int best = 0;
        for (int k = 1; k < 10; k++)
            if (probs[i * 10 + k] > probs[i * 10 + best]) best = k;
        printf("digit %d: predicted %d (p = %.3f)\n", i, best, probs[i * 10 + best]);
    }
    return 0;
}
