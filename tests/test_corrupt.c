/*
 * test_corrupt.c — the common corruptions (src/data/corrupt*.c): each type
 * at each severity keeps pixels in range and changes a synthetic image by
 * a mean absolute difference that grows with severity; determinism for a
 * seed and index; argument errors; whole data sets; names.
 */
#include "test.h"

#include <stdint.h>

/* A colour test image with smooth gradients, hard edges, a dark and a
 * bright region and fine texture, so every corruption has something to
 * act on (blurs need edges, brightness needs unsaturated pixels...). */
static void synth_colour(uint8_t *img, int h, int w)
{
    int64_t hw = (int64_t)h * w;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int64_t i = (int64_t)y * w + x;
            int check = ((x / 4) + (y / 4)) & 1;
            double r = 40 + 150.0 * x / (w - 1) + (check ? 30 : 0);
            double g = 60 + 120.0 * y / (h - 1);
            double b = 180 - 100.0 * (x + y) / (w + h - 2);
            double dx = x - 0.6 * w, dy = y - 0.4 * h;
            if (dx * dx + dy * dy < 0.04 * w * h) { /* a bright disk */
                r = 240;
                g = 230;
                b = 200;
            }
            if (y >= h - 4 && x < w / 3) /* a black bar */
                r = g = b = 0;
            img[i] = (uint8_t)r;
            img[hw + i] = (uint8_t)g;
            img[2 * hw + i] = (uint8_t)b;
        }
}

/* An MNIST-like digit: a thick white ring and stroke on black. */
static void synth_digit(uint8_t *img, int h, int w)
{
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double dx = x - w / 2.0, dy = y - h / 2.0, r = sqrt(dx * dx + dy * dy);
            double v = fabs(r - 0.3 * h) < 2.0 ? 255 : fabs(r - 0.3 * h) < 3.0 ? 128 : 0;
            if (x >= w / 2 - 1 && x <= w / 2 + 1 && y > h / 5 && y < 4 * h / 5)
                v = 255;
            img[(int64_t)y * w + x] = (uint8_t)v;
        }
}

static double mad(const uint8_t *a, const uint8_t *b, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += abs((int)a[i] - (int)b[i]);
    return s / (double)n;
}

/* MAD of type at each severity, averaged over `reps` image indices (the
 * random draws differ per index; averaging keeps the check about the
 * parameters, not one unlucky draw). */
static void severity_curve(const uint8_t *clean, int c, int h, int w, ib_corruption t, int reps, double out[5])
{
    int64_t n = (int64_t)c * h * w;
    uint8_t *img = malloc((size_t)n);
    for (int s = 1; s <= 5; s++) {
        out[s - 1] = 0;
        for (int r = 0; r < reps; r++) {
            memcpy(img, clean, (size_t)n);
            CHECK_OK(ib_corrupt_image(img, c, h, w, t, s, 1234, (uint64_t)r));
            out[s - 1] += mad(clean, img, n) / reps;
        }
    }
    free(img);
}

/* Which types are not monotone in pixel change, and why (see
 * docs/corruptions.md): the reference parameters are ordered by how much
 * they hurt classifiers, not by how many grey levels they move.
 * Glass blur: severity 2's blur (sigma 0.25) rounds away in 8 bits, so
 * severities 1 and 2 tie, and severity 5's blur (0.4 against 0.25 at 4)
 * smooths the shuffle back a little.  Elastic: the affine jitter shrinks with
 * severity (0.08 -> 0.03 of the side) while the smooth field grows, so
 * its MAD falls (test_elastic_parts checks each part).  Saturate:
 * severities 1-2 desaturate, 3-5 oversaturate.  Pixelate: a side of
 * 24 = 32 * 3/4 (severity 4) lines its blocks up with a period-4 pattern
 * better than 27 (severity 3) does, so structured images can dip; on
 * i.i.d. noise it grows (test_pixelate_grows_on_noise). */
static bool allows_dip(ib_corruption t)
{
    return t == IB_CORRUPT_ELASTIC || t == IB_CORRUPT_SATURATE || t == IB_CORRUPT_GLASS_BLUR ||
           t == IB_CORRUPT_PIXELATE;
}

static void test_pixelate_grows_on_noise(void)
{
    uint8_t noise[3 * 32 * 32];
    float u[3 * 32 * 32];
    ib_rng_uniform(11, 12, 13, u, 3 * 32 * 32);
    for (int i = 0; i < 3 * 32 * 32; i++)
        noise[i] = (uint8_t)(u[i] * 255);
    double m[5];
    severity_curve(noise, 3, 32, 32, IB_CORRUPT_PIXELATE, 1, m);
    for (int s = 1; s < 5; s++)
        CHECK_MSG(m[s] > m[s - 1], "pixelate on noise: MAD %.3f at severity %d, %.3f at %d", m[s - 1], s, m[s], s + 1);
}

static void check_curves(const uint8_t *clean, int c, int h, int w, const char *what)
{
    for (int t = 0; t < IB_CORRUPT_COUNT; t++) {
        if (t == IB_CORRUPT_SATURATE && c == 1)
            continue; /* identity on grey images; checked separately */
        double m[5];
        severity_curve(clean, c, h, w, (ib_corruption)t, 6, m);
        printf("    %-6s %-18s MAD %7.3f %7.3f %7.3f %7.3f %7.3f\n", what, ib_corruption_name((ib_corruption)t), m[0],
               m[1], m[2], m[3], m[4]);
        /* Every severity changes the image. */
        CHECK_MSG(m[0] > 0.1, "%s %s: severity 1 changes the image by only %.3f", what,
                  ib_corruption_name((ib_corruption)t), m[0]);
        if (allows_dip((ib_corruption)t)) {
            for (int s = 1; s < 5; s++) /* still, every severity changes the image */
                CHECK_MSG(m[s] > 0.1, "%s %s: severity %d changes the image by only %.3f", what,
                          ib_corruption_name((ib_corruption)t), s + 1, m[s]);
            continue;
        }
        /* Non-decreasing, not strictly: motion blur's severities 3 (6, 2)
         * and 4 (8, 2) differ only in kernel width, and the weights past
         * 6 pixels at sigma 2 are below 1e-4, so they tie; brightness and
         * fog saturate at white.  (1e-9 absorbs float summation noise only.) */
        for (int s = 1; s < 5; s++)
            CHECK_MSG(m[s] >= m[s - 1] - 1e-9, "%s %s: MAD falls from severity %d (%.4f) to %d (%.4f)", what,
                      ib_corruption_name((ib_corruption)t), s, m[s - 1], s + 1, m[s]);
        CHECK_MSG(m[4] > m[0], "%s %s: severity 5 (%.3f) not above severity 1 (%.3f)", what,
                  ib_corruption_name((ib_corruption)t), m[4], m[0]);
    }
}

static void test_severity_grows_colour(void)
{
    uint8_t img[3 * 32 * 32];
    synth_colour(img, 32, 32);
    check_curves(img, 3, 32, 32, "cifar");
}

static void test_severity_grows_grey(void)
{
    uint8_t img[28 * 28];
    synth_digit(img, 28, 28);
    check_curves(img, 1, 28, 28, "mnist");
    /* saturate leaves grey untouched */
    uint8_t b[28 * 28];
    memcpy(b, img, sizeof b);
    CHECK_OK(ib_corrupt_image(b, 1, 28, 28, IB_CORRUPT_SATURATE, 5, 1, 0));
    CHECK(memcmp(b, img, sizeof b) == 0);
}

/* Pixels stay in range: with uint8 output that is automatic, so check the
 * extremes instead: an all-white image under brightness stays white, an
 * all-black one under contrast stays black, and odd sizes and 4 channels
 * run (no out-of-bounds reads; run under ASan in CI). */
static void test_range_and_odd_sizes(void)
{
    uint8_t white[3 * 17 * 23];
    memset(white, 255, sizeof white);
    CHECK_OK(ib_corrupt_image(white, 3, 17, 23, IB_CORRUPT_BRIGHTNESS, 5, 1, 0));
    for (size_t i = 0; i < sizeof white; i++)
        CHECK_EQ_INT(white[i], 255);
    uint8_t black[3 * 17 * 23] = {0};
    CHECK_OK(ib_corrupt_image(black, 3, 17, 23, IB_CORRUPT_CONTRAST, 5, 1, 0));
    for (size_t i = 0; i < sizeof black; i++)
        CHECK_EQ_INT(black[i], 0);
    /* brightness on black: HSV value +0.3 gives grey 0.3*255 = 76.5 -> 77 (round half away). */
    memset(black, 0, sizeof black);
    CHECK_OK(ib_corrupt_image(black, 3, 17, 23, IB_CORRUPT_BRIGHTNESS, 5, 1, 0));
    CHECK_EQ_INT(black[0], 77);
    for (int t = 0; t < IB_CORRUPT_COUNT; t++)
        for (int s = 1; s <= 5; s++) {
            uint8_t a[4 * 9 * 13], b[1 * 5 * 3];
            for (size_t i = 0; i < sizeof a; i++)
                a[i] = (uint8_t)(i * 37);
            for (size_t i = 0; i < sizeof b; i++)
                b[i] = (uint8_t)(i * 91);
            CHECK_OK(ib_corrupt_image(a, 4, 9, 13, (ib_corruption)t, s, 5, 7));
            CHECK_OK(ib_corrupt_image(b, 1, 5, 3, (ib_corruption)t, s, 5, 7));
        }
}

static void test_deterministic_for_seed_and_index(void)
{
    uint8_t clean[3 * 32 * 32], a[3 * 32 * 32], b[3 * 32 * 32];
    synth_colour(clean, 32, 32);
    int random_types = 0;
    for (int t = 0; t < IB_CORRUPT_COUNT; t++) {
        memcpy(a, clean, sizeof a);
        memcpy(b, clean, sizeof b);
        CHECK_OK(ib_corrupt_image(a, 3, 32, 32, (ib_corruption)t, 3, 99, 5));
        CHECK_OK(ib_corrupt_image(b, 3, 32, 32, (ib_corruption)t, 3, 99, 5));
        CHECK_MSG(memcmp(a, b, sizeof a) == 0, "%s is not deterministic", ib_corruption_name((ib_corruption)t));
        /* Another index draws other noise, for the random types. */
        memcpy(b, clean, sizeof b);
        CHECK_OK(ib_corrupt_image(b, 3, 32, 32, (ib_corruption)t, 3, 99, 6));
        bool differs = memcmp(a, b, sizeof a) != 0;
        bool random = t != IB_CORRUPT_DEFOCUS_BLUR && t != IB_CORRUPT_ZOOM_BLUR && t != IB_CORRUPT_BRIGHTNESS &&
                      t != IB_CORRUPT_CONTRAST && t != IB_CORRUPT_PIXELATE && t != IB_CORRUPT_JPEG &&
                      t != IB_CORRUPT_GAUSSIAN_BLUR && t != IB_CORRUPT_SATURATE;
        CHECK_MSG(differs == random, "%s: index 5 and 6 %s", ib_corruption_name((ib_corruption)t),
                  differs ? "differ but the corruption has no randomness" : "give the same image");
        random_types += random;
    }
    CHECK_EQ_INT(random_types, 9);
}

/* Closed forms the reference defines exactly. */
static void test_exact_values(void)
{
    /* contrast 0.15 at severity 5 towards the channel mean: a two-valued
     * image 0/200 with mean 100 becomes 100 -+ 15. */
    uint8_t img[1 * 2 * 2] = {0, 200, 200, 0};
    CHECK_OK(ib_corrupt_image(img, 1, 2, 2, IB_CORRUPT_CONTRAST, 5, 0, 0));
    CHECK_EQ_INT(img[0], 85);
    CHECK_EQ_INT(img[1], 115);
    /* brightness keeps hue and saturation: (100, 50, 0) + V 0.3 -> V' =
     * 100/255 + 0.3, all channels scaled by V'/V. */
    uint8_t rgb[3] = {100, 50, 0};
    CHECK_OK(ib_corrupt_image(rgb, 3, 1, 1, IB_CORRUPT_BRIGHTNESS, 5, 0, 0));
    double f = (100 / 255.0 + 0.3) / (100 / 255.0);
    CHECK_EQ_INT(rgb[0], (int)lround(100 * f));
    CHECK_EQ_INT(rgb[1], (int)lround(50 * f));
    CHECK_EQ_INT(rgb[2], 0);
    /* impulse noise: only 0 and 255 appear as new values, and the share of
     * changed pixels of a mid-grey image is near the amount 0.07 (n = 3*64*64;
     * the binomial sd is 0.0023, so 0.01 is > 4 sd). */
    static uint8_t grey[3 * 64 * 64];
    memset(grey, 128, sizeof grey);
    CHECK_OK(ib_corrupt_image(grey, 3, 64, 64, IB_CORRUPT_IMPULSE_NOISE, 5, 3, 0));
    int changed = 0;
    for (size_t i = 0; i < sizeof grey; i++) {
        CHECK(grey[i] == 128 || grey[i] == 0 || grey[i] == 255);
        changed += grey[i] != 128;
    }
    CHECK_NEAR(changed / (double)sizeof grey, 0.07, 0.01);
    /* Gaussian noise sd 0.10 at severity 5 on mid grey: the sample sd of
     * the change is 25.5 grey levels (12288 samples: sd of the estimate
     * ~0.7%; rounding adds 1/12 level^2). */
    memset(grey, 128, sizeof grey);
    CHECK_OK(ib_corrupt_image(grey, 3, 64, 64, IB_CORRUPT_GAUSSIAN_NOISE, 5, 3, 0));
    double v = 0;
    for (size_t i = 0; i < sizeof grey; i++)
        v += (grey[i] - 128.0) * (grey[i] - 128.0);
    CHECK_NEAR(sqrt(v / sizeof grey), 25.5, 0.6);
    /* Shot noise: Poisson(x c)/c has mean x and sd sqrt(x/c); at severity 5
     * (c = 50) on x = 128/255 the sd is 0.1002 -> 25.55 levels. */
    memset(grey, 128, sizeof grey);
    CHECK_OK(ib_corrupt_image(grey, 3, 64, 64, IB_CORRUPT_SHOT_NOISE, 5, 3, 0));
    double m = 0;
    v = 0;
    for (size_t i = 0; i < sizeof grey; i++) {
        m += grey[i];
        v += (grey[i] - 128.0) * (grey[i] - 128.0);
    }
    CHECK_NEAR(m / sizeof grey, 128.0, 0.7); /* 3 standard errors */
    CHECK_NEAR(sqrt(v / sizeof grey), 255 * sqrt(128 / 255.0 / 50), 0.7);
    /* Shot noise at a large count (c = 500, lambda ~ 250) goes through the
     * rejection sampler: sd sqrt(x/c) = 0.0317 -> 8.08 levels. */
    memset(grey, 128, sizeof grey);
    CHECK_OK(ib_corrupt_image(grey, 3, 64, 64, IB_CORRUPT_SHOT_NOISE, 1, 3, 0));
    v = 0;
    for (size_t i = 0; i < sizeof grey; i++)
        v += (grey[i] - 128.0) * (grey[i] - 128.0);
    CHECK_NEAR(sqrt(v / sizeof grey), 255 * sqrt(128 / 255.0 / 500), 0.25);
    /* A flat image is a fixed point of every blur and of pixelate (all
     * kernels are normalised; borders repeat the same value). */
    ib_corruption flat_fixed[] = {IB_CORRUPT_DEFOCUS_BLUR, IB_CORRUPT_GLASS_BLUR, IB_CORRUPT_MOTION_BLUR,
                                  IB_CORRUPT_ZOOM_BLUR, IB_CORRUPT_GAUSSIAN_BLUR, IB_CORRUPT_PIXELATE,
                                  IB_CORRUPT_ELASTIC};
    for (size_t t = 0; t < sizeof flat_fixed / sizeof *flat_fixed; t++) {
        uint8_t flat[3 * 20 * 20];
        memset(flat, 77, sizeof flat);
        CHECK_OK(ib_corrupt_image(flat, 3, 20, 20, flat_fixed[t], 5, 3, 1));
        for (size_t i = 0; i < sizeof flat; i++)
            CHECK_MSG(flat[i] == 77, "%s moved a flat image at %zu to %d", ib_corruption_name(flat_fixed[t]), i,
                      flat[i]);
    }
}

/* Elastic = random affine map + smooth random displacement field.  At
 * severity 1 the field's strength is 0, so a linear ramp stays linear
 * (bilinear sampling of a linear function is exact): second differences
 * in the interior are rounding only (each pixel rounds by <= 0.5, so
 * |f(x+1) - 2 f(x) + f(x-1)| <= 2).  At severity 5 the field bends it. */
static double max_second_diff(const uint8_t *img, int h, int w, int margin)
{
    double m = 0;
    for (int y = margin; y < h - margin; y++)
        for (int x = margin; x < w - margin; x++) {
            double dxx = img[y * w + x + 1] - 2.0 * img[y * w + x] + img[y * w + x - 1];
            double dyy = img[(y + 1) * w + x] - 2.0 * img[y * w + x] + img[(y - 1) * w + x];
            m = fmax(m, fmax(fabs(dxx), fabs(dyy)));
        }
    return m;
}

static void test_elastic_parts(void)
{
    uint8_t ramp[32 * 32], a[32 * 32];
    for (int y = 0; y < 32; y++)
        for (int x = 0; x < 32; x++)
            ramp[y * 32 + x] = (uint8_t)(60 + 3 * x + 2 * y);
    for (int idx = 0; idx < 4; idx++) {
        memcpy(a, ramp, sizeof a);
        CHECK_OK(ib_corrupt_image(a, 1, 32, 32, IB_CORRUPT_ELASTIC, 1, 8, (uint64_t)idx));
        CHECK(mad(a, ramp, sizeof a) > 0.5); /* the affine part moved it */
        CHECK(max_second_diff(a, 32, 32, 6) <= 2.0);
        memcpy(a, ramp, sizeof a);
        CHECK_OK(ib_corrupt_image(a, 1, 32, 32, IB_CORRUPT_ELASTIC, 5, 8, (uint64_t)idx));
        double d2 = max_second_diff(a, 32, 32, 6);
        CHECK_MSG(d2 > 3.0, "elastic severity 5 left the ramp linear (max second difference %.1f)", d2);
    }
}

/* Bit-level agreement with PIL and numpy (tests/ref/make_corrupt_ref.py):
 * pixelate is PIL's BOX resampling exactly (tolerance 0); JPEG goes
 * through the same libjpeg-turbo codec at the same quality and
 * subsampling (tolerance 1 grey level, for a libjpeg built with other SIMD
 * paths); contrast is compared with the unrounded float result (0.5 + a
 * float32 margin). */
static void compare_u8(const char *what, const uint8_t *got, const float *want, int64_t n, double tol)
{
    double worst = 0;
    for (int64_t i = 0; i < n; i++)
        worst = fmax(worst, fabs(got[i] - want[i]));
    CHECK_MSG(worst <= tol, "%s: differs from the reference by %.3f > %.3f", what, worst, tol);
}

static void test_matches_pil_reference(void)
{
    ib_fixture *f = ib_fixture_load("corrupt.txt");
    int64_t n, ng;
    const float *in = ib_fixture_get(f, "input", &n), *ing = ib_fixture_get(f, "input_grey", &ng);
    CHECK_EQ_INT(n, 3 * 32 * 32);
    CHECK_EQ_INT(ng, 32 * 32);
    uint8_t src[3 * 32 * 32], srcg[32 * 32], a[3 * 32 * 32];
    for (int64_t i = 0; i < n; i++)
        src[i] = (uint8_t)in[i];
    for (int64_t i = 0; i < ng; i++)
        srcg[i] = (uint8_t)ing[i];
    char name[64];
    for (int s = 1; s <= 5; s++) {
        struct { const char *key; ib_corruption t; double tol; } cases[] = {
            {"pixelate", IB_CORRUPT_PIXELATE, 0}, {"jpeg", IB_CORRUPT_JPEG, 1}, {"contrast", IB_CORRUPT_CONTRAST, 0.5001}};
        for (int k = 0; k < 3; k++) {
            memcpy(a, src, sizeof a);
            CHECK_OK(ib_corrupt_image(a, 3, 32, 32, cases[k].t, s, 0, 0));
            snprintf(name, sizeof name, "%s_%d", cases[k].key, s);
            compare_u8(name, a, ib_fixture_get(f, name, NULL), n, cases[k].tol);
            if (k == 2)
                continue;
            memcpy(a, srcg, sizeof srcg);
            CHECK_OK(ib_corrupt_image(a, 1, 32, 32, cases[k].t, s, 0, 0));
            snprintf(name, sizeof name, "%s_grey_%d", cases[k].key, s);
            compare_u8(name, a, ib_fixture_get(f, name, NULL), ng, cases[k].tol);
        }
    }
    ib_fixture_free(f);
}

/* Glass blur at severity 1 (sigma 0.05: a radius-0 kernel, no blur) is
 * the local shuffle alone: every pixel holds the value of itself or of its
 * up, left or up-left neighbour (offsets drawn from [-1, 1)). */
static void test_glass_shuffle_is_local(void)
{
    uint8_t in[3 * 32 * 32], out[3 * 32 * 32];
    float u[3 * 32 * 32];
    ib_rng_uniform(4, 5, 6, u, 3 * 32 * 32);
    for (int i = 0; i < 3 * 32 * 32; i++)
        in[i] = (uint8_t)(u[i] * 255);
    memcpy(out, in, sizeof in);
    CHECK_OK(ib_corrupt_image(out, 3, 32, 32, IB_CORRUPT_GLASS_BLUR, 1, 1, 0));
    int moved = 0;
    for (int y = 0; y < 32; y++)
        for (int x = 0; x < 32; x++) {
            bool found = false;
            for (int dy = -1; dy <= 0 && !found; dy++)
                for (int dx = -1; dx <= 0 && !found; dx++) {
                    int yy = y + dy < 0 ? 0 : y + dy, xx = x + dx < 0 ? 0 : x + dx;
                    bool all = true; /* the channels move together */
                    for (int c = 0; c < 3; c++)
                        all &= out[c * 1024 + y * 32 + x] == in[c * 1024 + yy * 32 + xx];
                    found = all;
                }
            CHECK_MSG(found, "glass blur: pixel (%d, %d) came from outside its 2x2 up-left neighbourhood", y, x);
            moved += out[y * 32 + x] != in[y * 32 + x];
        }
    /* 3 of 4 draws move a pixel in the 30x30 shuffled interior */
    CHECK(moved > 500);
}

static void test_bad_arguments(void)
{
    uint8_t img[3 * 8 * 8] = {0};
    CHECK(ib_corrupt_image(img, 3, 8, 8, IB_CORRUPT_FOG, 0, 1, 0) == IB_ERR_ARG);
    CHECK(ib_corrupt_image(img, 3, 8, 8, IB_CORRUPT_FOG, 6, 1, 0) == IB_ERR_ARG);
    CHECK(ib_corrupt_image(img, 3, 8, 8, IB_CORRUPT_COUNT, 1, 1, 0) == IB_ERR_ARG);
    CHECK(ib_corrupt_image(img, 0, 8, 8, IB_CORRUPT_FOG, 1, 1, 0) == IB_ERR_ARG);
    CHECK(ib_corrupt_image(NULL, 3, 8, 8, IB_CORRUPT_FOG, 1, 1, 0) == IB_ERR_ARG);
    CHECK(strstr(ib_last_error(), "NULL") != NULL);
}

static void test_names_round_trip(void)
{
    for (int t = 0; t < IB_CORRUPT_COUNT; t++) {
        ib_corruption back;
        const char *name = ib_corruption_name((ib_corruption)t);
        CHECK(name != NULL);
        CHECK_OK(ib_corruption_parse(name, &back));
        CHECK_EQ_INT(back, t);
    }
    CHECK(ib_corruption_name(IB_CORRUPT_COUNT) == NULL);
    ib_corruption x;
    CHECK(ib_corruption_parse("frost", &x) == IB_ERR_ARG);
    CHECK(strstr(ib_last_error(), "frost") != NULL);
    CHECK_OK(ib_corruption_parse("jpeg", &x));
    CHECK_EQ_INT(x, IB_CORRUPT_JPEG);
    CHECK_EQ_INT(IB_CORRUPT_BENCHMARK, 14);
}

/* The data set version equals the per-image call with index i, whatever the
 * thread count, and copies the labels. */
static void test_dataset_corrupt(void)
{
    ib_dataset *d = ib_dataset_new("synth", 5, 3, 32, 32, 10);
    CHECK(d != NULL);
    for (int i = 0; i < 5; i++) {
        synth_colour(d->images + i * 3 * 32 * 32, 32, 32);
        d->images[i * 3 * 32 * 32] = (uint8_t)(i * 40); /* make the images differ */
        d->labels[i] = 9 - i;
    }
    ib_dataset *out = NULL;
    CHECK_OK(ib_dataset_corrupt(d, IB_CORRUPT_SNOW, 4, 42, &out));
    CHECK(out != NULL);
    CHECK_EQ_INT(out->n, 5);
    CHECK(strcmp(out->name, "synth-snow-4") == 0);
    for (int i = 0; i < 5; i++) {
        uint8_t img[3 * 32 * 32];
        memcpy(img, d->images + i * sizeof img, sizeof img);
        CHECK_OK(ib_corrupt_image(img, 3, 32, 32, IB_CORRUPT_SNOW, 4, 42, (uint64_t)i));
        CHECK(memcmp(img, out->images + i * sizeof img, sizeof img) == 0);
        CHECK_EQ_INT(out->labels[i], 9 - i);
    }
    ib_dataset_free(out);
    CHECK(ib_dataset_corrupt(d, IB_CORRUPT_SNOW, 9, 42, &out) == IB_ERR_ARG);
    CHECK(out == NULL);
    ib_dataset_free(d);
}

int main(void)
{
    IB_RUN(test_names_round_trip);
    IB_RUN(test_bad_arguments);
    IB_RUN(test_exact_values);
    IB_RUN(test_range_and_odd_sizes);
    IB_RUN(test_deterministic_for_seed_and_index);
    IB_RUN(test_elastic_parts);
    IB_RUN(test_glass_shuffle_is_local);
    IB_RUN(test_matches_pil_reference);
    IB_RUN(test_pixelate_grows_on_noise);
    IB_RUN(test_severity_grows_colour);
    IB_RUN(test_severity_grows_grey);
    IB_RUN(test_dataset_corrupt);
    return ib_test_summary();
}
