/*
 * registry.c — the data sets ibnet knows by name: where their files are
 * looked for, what each file must contain (decompressed size, count,
 * sha256), and loading them with that verification.  The sums are the
 * ones in shared/data/README.md (MNIST, CIFAR-10); Fashion-MNIST's were
 * computed here from Debian's dataset-fashion-mnist files, whose train
 * MD5s equal the published upstream ones.  CIFAR-100 has no published
 * per-file sums, so only its sizes and counts are checked.
 */
#include "data/dataset_internal.h"

#include <sys/stat.h>

typedef struct kfile {
    const char *name;
    int64_t bytes;      /* decompressed */
    const char *sha256; /* of the decompressed content, NULL if unknown */
} kfile;

typedef struct ksplit {
    int n_files;
    kfile files[5];     /* IDX: images, labels; CIFAR: the batches in order */
    int64_t count;
} ksplit;

typedef enum { FMT_IDX, FMT_CIFAR } kformat;

typedef struct kset {
    const char *name;
    kformat format;
    int classes, label_bytes;
    const char *subdirs[3]; /* folder names under a data root */
    const char *system_dir; /* a distribution's install folder, or NULL */
    ksplit train, test;
    const char *class_names[10];
} kset;

#define MNIST_NAMES {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}

static const kset SETS[] = {
    {"mnist", FMT_IDX, 10, 0, {"mnist", "MNIST/raw", NULL}, NULL,
     {2, {{"train-images-idx3-ubyte", 47040016, "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"},
          {"train-labels-idx1-ubyte", 60008, "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"}}, 60000},
     {2, {{"t10k-images-idx3-ubyte", 7840016, "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"},
          {"t10k-labels-idx1-ubyte", 10008, "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"}}, 10000},
     MNIST_NAMES},
    {"fashion-mnist", FMT_IDX, 10, 0, {"fashion-mnist", "FashionMNIST/raw", NULL}, "/usr/share/datasets/fashion-mnist",
     {2, {{"train-images-idx3-ubyte", 47040016, "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"},
          {"train-labels-idx1-ubyte", 60008, "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"}}, 60000},
     {2, {{"t10k-images-idx3-ubyte", 7840016, "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"},
          {"t10k-labels-idx1-ubyte", 10008, "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"}}, 10000},
     {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}},
    {"cifar10", FMT_CIFAR, 10, 1, {"cifar-10-batches-bin", "cifar10", NULL}, NULL,
     {5, {{"data_batch_1.bin", 30730000, "cee916563c9f80d84e3cc88e17fdc0941787f1244f00a67874d45b261883ada5"},
          {"data_batch_2.bin", 30730000, "a591ca11fa1708a91ee40f54b3da4784ccd871ecf2137de63f51ada8b3fa57ed"},
          {"data_batch_3.bin", 30730000, "bbe8596564c0f86427f876058170b84dac6670ddf06d79402899d93ceea26f67"},
          {"data_batch_4.bin", 30730000, "014e562d6e23c72197cc727519169a60359f5eccd8945ad5a09d710285ff4e48"},
          {"data_batch_5.bin", 30730000, "755304fc0b379caeae8c14f0dac912fbc7d6cd469eb67a1029a08a39453a9add"}}, 50000},
     {1, {{"test_batch.bin", 30730000, "8e2eb146ae340b09e24670f29cabc6326dba54da8789dab6768acf480273f65b"}}, 10000},
     {"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"}},
    {"cifar100", FMT_CIFAR, 100, 2, {"cifar-100-binary", "cifar100", NULL}, NULL,
     {1, {{"train.bin", 153700000, NULL}}, 50000},
     {1, {{"test.bin", 30740000, NULL}}, 10000},
     {NULL}},
};
#define N_SETS ((int)(sizeof SETS / sizeof SETS[0]))

const char *ib_dataset_known(int i) { return i >= 0 && i < N_SETS ? SETS[i].name : NULL; }

static const kset *find_set(const char *name)
{
    for (int i = 0; i < N_SETS; i++)
        if (strcmp(SETS[i].name, name) == 0)
            return &SETS[i];
    return NULL;
}

static bool is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* dir/name or dir/name.gz, whichever exists (plain first). */
static bool file_in(const char *dir, const char *name, char *buf, size_t len)
{
    /* A path that does not fit the buffer is treated as absent. */
    int k = snprintf(buf, len, "%s/%s", dir, name);
    if (k > 0 && (size_t)k < len && is_file(buf))
        return true;
    k = snprintf(buf, len, "%s/%s.gz", dir, name);
    return k > 0 && (size_t)k < len && is_file(buf);
}

/* dir holds the set if the first file of either split is there. */
static bool holds(const kset *k, const char *dir)
{
    char p[4096];
    return file_in(dir, k->train.files[0].name, p, sizeof p) || file_in(dir, k->test.files[0].name, p, sizeof p);
}

/* base itself, or one of the set's folder names under it. */
static bool probe(const kset *k, const char *base, char *buf, size_t len)
{
    if (!base || !*base)
        return false;
    for (int s = 0; s < 3 && k->subdirs[s]; s++) {
        snprintf(buf, len, "%s/%s", base, k->subdirs[s]);
        if (holds(k, buf))
            return true;
    }
    snprintf(buf, len, "%s", base);
    return holds(k, buf);
}

static ib_status find_dir(const kset *k, const char *data_dir, char *buf, size_t len)
{
    if (data_dir) {
        if (probe(k, data_dir, buf, len))
            return IB_OK;
        return ib__error(IB_ERR_IO, "%s: data set %s not found there (looked for %s or %s[.gz] in it and in its "
                                    "subfolder %s)",
                         data_dir, k->name, k->train.files[0].name, k->test.files[0].name, k->subdirs[0]);
    }
    const char *env = getenv("IBNET_DATA");
    const char *bases[] = {env, "data", "../shared/data", k->system_dir};
    for (int b = 0; b < 4; b++)
        if (probe(k, bases[b], buf, len))
            return IB_OK;
    return ib__error(IB_ERR_IO, "data set %s not found: looked in %s%s./data, ../shared/data%s%s (each directly or in "
                                "%s/); give --data DIR or set IBNET_DATA",
                     k->name, env ? env : "", env ? ", " : "(IBNET_DATA unset), ", k->system_dir ? ", " : "",
                     k->system_dir ? k->system_dir : "", k->subdirs[0]);
}

static ib_status unknown(const char *name)
{
    char list[256] = "";
    for (int i = 0; i < N_SETS; i++) {
        strncat(list, SETS[i].name, sizeof list - strlen(list) - 1);
        if (i + 1 < N_SETS)
            strncat(list, ", ", sizeof list - strlen(list) - 1);
    }
    return ib__error(IB_ERR_ARG, "unknown data set '%s' (known: %s)", name ? name : "(null)", list);
}

ib_status ib_dataset_find_dir(const char *name, const char *data_dir, char *buf, size_t len)
{
    const kset *k = name ? find_set(name) : NULL;
    if (!k)
        return unknown(name);
    if (!buf || len == 0)
        return ib__error(IB_ERR_ARG, "ib_dataset_find_dir: no buffer");
    return find_dir(k, data_dir, buf, len);
}

ib_status ib_dataset_load(const char *name, const char *split, const char *data_dir, const ib_load_options *opt,
                          ib_dataset **out)
{
    if (out)
        *out = NULL;
    const kset *k = name ? find_set(name) : NULL;
    if (!k)
        return unknown(name);
    if (!out || !split || (strcmp(split, "train") != 0 && strcmp(split, "test") != 0))
        return ib__error(IB_ERR_ARG, "ib_dataset_load(%s): split must be \"train\" or \"test\" (got %s)", name,
                         split ? split : "NULL");
    bool hash = !(opt && opt->skip_hash);
    const ksplit *sp = strcmp(split, "train") == 0 ? &k->train : &k->test;
    char dir[4096];
    ib_status s = find_dir(k, data_dir, dir, sizeof dir);
    if (s != IB_OK)
        return s;

    char paths[5][4096];
    const char *pp[5];
    for (int f = 0; f < sp->n_files; f++) {
        if (!file_in(dir, sp->files[f].name, paths[f], sizeof paths[f]))
            return ib__error(IB_ERR_IO, "%s/%s: missing (nor %s.gz): data set %s %s is incomplete", dir,
                             sp->files[f].name, sp->files[f].name, k->name, split);
        pp[f] = paths[f];
        /* A plain file's size is known before reading it. */
        struct stat st;
        size_t plen = strlen(paths[f]);
        if (!(plen > 3 && strcmp(paths[f] + plen - 3, ".gz") == 0) && stat(paths[f], &st) == 0 &&
            (int64_t)st.st_size != sp->files[f].bytes)
            return ib__error(IB_ERR_FORMAT, "%s: size %lld bytes, the %s file has %lld", paths[f], (long long)st.st_size,
                             k->name, (long long)sp->files[f].bytes);
    }
    char hex[5][65];
    ib_dataset *d = NULL;
    if (k->format == FMT_IDX)
        s = ib__load_idx(pp[0], pp[1], k->classes, hash ? hex : NULL, &d);
    else
        s = ib__load_cifar(pp, sp->n_files, k->label_bytes, k->classes, hash ? hex : NULL, &d);
    if (s != IB_OK)
        return s;
    if (d->n != sp->count) {
        s = ib__error(IB_ERR_FORMAT, "%s: %lld examples, the %s %s split has %lld", dir, (long long)d->n, k->name, split,
                      (long long)sp->count);
        ib_dataset_free(d);
        return s;
    }
    if (k->format == FMT_IDX && (d->h != 28 || d->w != 28)) {
        s = ib__error(IB_ERR_FORMAT, "%s: images are %dx%d, %s has 28x28", pp[0], d->h, d->w, k->name);
        ib_dataset_free(d);
        return s;
    }
    for (int f = 0; hash && f < sp->n_files; f++) {
        if (sp->files[f].sha256 && strcmp(hex[f], sp->files[f].sha256) != 0) {
            s = ib__error(IB_ERR_FORMAT, "%s: sha256 of the decompressed content is %s, expected %s: the file is damaged "
                                         "or not the original (skip the hash check to load it anyway)",
                          pp[f], hex[f], sp->files[f].sha256);
            ib_dataset_free(d);
            return s;
        }
    }
    snprintf(d->name, sizeof d->name, "%s", k->name);
    if (!d->class_names && k->class_names[0] &&
        (s = ib_dataset_set_class_names(d, k->class_names, k->classes)) != IB_OK) {
        ib_dataset_free(d);
        return s;
    }
    *out = d;
    return IB_OK;
}
