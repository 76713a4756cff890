using TorchSharp;
using WeakSeg.Data;
using WeakSeg.Refinement;
using WeakSeg.Segmentation;

namespace WeakSeg.Tests.Segmentation;

[Collection("Torch")]
public class SegmentationCrfTests
{
    /// <summary>16×16: left half black, right half white; class 0 left, class 1 right (p = 0.9), except one left pixel
    /// predicted class 1 with p = 0.6 — an isolated error the colour/position kernels should vote away.</summary>
    static (RgbImage Image, float[] Probs) IsolatedError()
    {
        const int w = 16, h = 16, n = w * h;
        var image = new RgbImage(w, h);
        var probs = new float[2 * n];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                int i = y * w + x;
                bool right = x >= w / 2;
                if (right) image.Pixels[3 * i] = image.Pixels[3 * i + 1] = image.Pixels[3 * i + 2] = 255;
                float p1 = right ? 0.9f : 0.1f;
                probs[i] = 1 - p1;
                probs[n + i] = p1;
            }
        int wrong = 8 * w + 3;
        probs[wrong] = 0.4f;
        probs[n + wrong] = 0.6f;
        return (image, probs);
    }

    [Fact]
    public void Crf_refiner_fixes_an_isolated_wrong_pixel_and_equals_calling_the_dense_crf_directly()
    {
        var (image, probs) = IsolatedError();
        var before = SegmentationPredictor.Argmax(probs, 2, 16, 16);
        Assert.Equal(1, before[3, 8]);                                   // the error is there before the CRF
        var config = DenseCrfConfig.MctFormerSeg with { MaxThreads = 1 };
        var refined = SegmentationRefiners.DenseCrf(config)(image, probs, 2);
        var after = SegmentationPredictor.Argmax(refined, 2, 16, 16);
        Assert.Equal(0, after[3, 8]);                                    // fixed
        for (int y = 0; y < 16; y++)
            for (int x = 0; x < 16; x++) Assert.Equal(x >= 8 ? 1 : 0, after[x, y]);
        Assert.Equal(DenseCrf.Refine(image.Pixels, 16, 16, probs, config).Probabilities, refined);
        Assert.Throws<WeakSegException>(() => SegmentationRefiners.DenseCrf(config)(image, probs, 3));
    }

    [Fact]
    public void Predictor_with_the_crf_hook_predicts_the_argmax_of_the_crf_of_its_probabilities()
    {
        torch.manual_seed(5);
        using var model = new SegmenterModel(SegmentationTestData.Tiny());
        var predictor = new SegmentationPredictor(model, torch.CPU);
        var image = new RgbImage(24, 16);
        var rng = new Random(2);
        rng.NextBytes(image.Pixels);
        var config = DenseCrfConfig.MctFormerSeg with { MaxThreads = 1 };
        var options = new SegmentationInferenceOptions { Flip = true, Refine = SegmentationRefiners.DenseCrf(config) };
        var probs = predictor.Probabilities(image, options);
        var expected = SegmentationPredictor.Argmax(DenseCrf.Refine(image.Pixels, 24, 16, probs, config).Probabilities, 4, 24, 16);
        Assert.Equal(expected.Labels, predictor.Predict(image, options).Labels);
        Assert.NotEqual(SegmentationPredictor.Argmax(probs, 4, 24, 16).Labels, expected.Labels);   // the CRF changes something here
    }

    [Fact]
    public void Flip_averaging_batched_with_the_image_equals_two_separate_passes()
    {
        torch.manual_seed(6);
        using var model = new SegmenterModel(SegmentationTestData.Tiny() with { CropSize = 16 });   // 24×40 → several windows per image
        var predictor = new SegmentationPredictor(model, torch.CPU);
        int w = 40, h = 24, n = w * h;
        var image = new RgbImage(w, h);
        new Random(4).NextBytes(image.Pixels);
        var mirror = new RgbImage(w, h);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                for (int c = 0; c < 3; c++) mirror.Pixels[3 * (y * w + x) + c] = image.Pixels[3 * (y * w + (w - 1 - x)) + c];
        var noFlip = new SegmentationInferenceOptions { Flip = false, Scales = [1.0, 0.75], WindowBatch = 3 };
        var a = predictor.Probabilities(image, noFlip);
        var b = predictor.Probabilities(mirror, noFlip);
        var both = predictor.Probabilities(image, noFlip with { Flip = true });
        for (int k = 0; k < 4; k++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                {
                    float expected = 0.5f * (a[k * n + y * w + x] + b[k * n + y * w + (w - 1 - x)]);
                    Assert.True(Math.Abs(expected - both[k * n + y * w + x]) < 1e-5, $"class {k} at ({x}, {y}): {both[k * n + y * w + x]} vs {expected}");
                }
    }
}
