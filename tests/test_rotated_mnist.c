/*
 * test_rotated_mnist.c — `rotated-mnist:K` (ib_rotated_mnist_split and the
 * data-set name): on a synthetic source whose every image is unique (its
 * index written in two pixels) and with all angles 0, so an image can be
 * traced back: the six held-out domains partition the images, no image is
 * both in a training set and its test domain, the training set holds the
 * other five domains interleaved so the last k examples (the trainer's
 * validation split) hold all five; the real angles give the same partition
 * sizes; K outside 0..5 is IB_ERR_ARG and exits 2 in `ibnet train` and
 * `ibnet eval`.
 */
#include "test.h"


enum { N = 1003 }; /* not a multiple of 6: the domains differ in size by one */

static ib_dataset *source(void)
{
    ib_dataset *d = ib_dataset_new("src", N, 1, 8, 8, 10);
    CHECK(d != NULL);
    memset(d->images, 0, (size_t)N * 64);
    for (int i = 0; i < N; i++) {
        d->images[i * 64] = (uint8_t)(i & 255);
        d->images[i * 64 + 1] = (uint8_t)(i >> 8);
        d->labels[i] = i % 10;
    }
    return d;
}

static int index_of(const ib_dataset *d, int64_t t)
{
    const uint8_t *p = d->images + t * 64;
    return p[0] | p[1] << 8;
}

static void test_partition_and_interleaving(void)
{
    ib_dataset *src = source();
    float zero[IB_ROTATED_MNIST_DOMAINS] = {0};
    int domain_of[N];
    for (int i = 0; i < N; i++)
        domain_of[i] = -1;
    for (int k = 0; k < IB_ROTATED_MNIST_DOMAINS; k++) {
        ib_dataset *te = NULL;
        CHECK_OK(ib_rotated_mnist_split(src, zero, k, 0, false, &te));
        for (int64_t t = 0; t < te->n; t++) {
            int i = index_of(te, t);
            CHECK_MSG(domain_of[i] == -1, "image %d in test domains %d and %d", i, domain_of[i], k);
            domain_of[i] = k;
            CHECK_EQ_INT(te->labels[t], src->labels[i]);
        }
        CHECK(strcmp(te->name, "rotated-mnist:0") == 0 || k != 0);
        ib_dataset_free(te);
    }
    for (int i = 0; i < N; i++)
        CHECK_MSG(domain_of[i] >= 0, "image %d in no test domain", i);
    for (int k = 0; k < IB_ROTATED_MNIST_DOMAINS; k++) {
        ib_dataset *tr = NULL;
        CHECK_OK(ib_rotated_mnist_split(src, zero, k, 0, true, &tr));
        int64_t want = 0;
        for (int i = 0; i < N; i++)
            want += domain_of[i] != k;
        CHECK_EQ_INT(tr->n, want);
        bool seen[N] = {false};
        for (int64_t t = 0; t < tr->n; t++) {
            int i = index_of(tr, t);
            CHECK_MSG(domain_of[i] != k, "image %d of test domain %d in its training set", i, k);
            CHECK(!seen[i]);
            seen[i] = true;
            CHECK_EQ_INT(tr->labels[t], src->labels[i]);
        }
        /* the validation split (the last 50) holds all five training domains */
        int per[IB_ROTATED_MNIST_DOMAINS] = {0};
        for (int64_t t = tr->n - 50; t < tr->n; t++)
            per[domain_of[index_of(tr, t)]]++;
        for (int j = 0; j < IB_ROTATED_MNIST_DOMAINS; j++)
            if (j == k)
                CHECK_EQ_INT(per[j], 0);
            else
                CHECK_MSG(per[j] >= 9 && per[j] <= 11, "K=%d: %d of the last 50 from domain %d", k, per[j], j);
        ib_dataset_free(tr);
    }
    /* the real angles: the same sizes, images rotated */
    ib_dataset *te = NULL, *tr = NULL;
    CHECK_OK(ib_rotated_mnist_split(src, NULL, 5, 0, false, &te));
    CHECK_OK(ib_rotated_mnist_split(src, NULL, 5, 0, true, &tr));
    CHECK_EQ_INT(te->n + tr->n, N);
    ib_dataset_free(te);
    ib_dataset_free(tr);
    CHECK_EQ_INT(ib_rotated_mnist_split(src, zero, 6, 0, false, &te), IB_ERR_ARG);
    CHECK(te == NULL);
    CHECK_EQ_INT(ib_rotated_mnist_split(src, zero, -1, 0, true, &te), IB_ERR_ARG);
    ib_dataset_free(src);
}

static void test_bad_k(void)
{
    const char *bad[] = {"rotated-mnist:6", "rotated-mnist:-1", "rotated-mnist:", "rotated-mnist:12",
                         "rotated-mnist:x"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        ib_dataset *d = NULL;
        CHECK_EQ_INT(ib_dataset_open(bad[k], "train", NULL, NULL, &d), IB_ERR_ARG);
        CHECK(d == NULL);
        CHECK_MSG(strstr(ib_last_error(), "0..5"), "%s", ib_last_error());
    }
    /* through the commands: exit 2 before any data is read */
    char args[2400];
    snprintf(args, sizeof args, "train --dataset rotated-mnist:6 --epochs 1 --out %s/run", ib_test_tmpdir());
    CHECK_EQ_INT(ib_test_run_cli(args, NULL), 2);
    CHECK_EQ_INT(ib_test_run_cli("data info rotated-mnist:9", NULL), 2);
}

int main(void)
{
    IB_RUN(test_partition_and_interleaving);
    IB_RUN(test_bad_k);
    return ib_test_summary();
}
