using TorchSharp;
using WeakSeg.Data;
using WeakSeg.Models.Vit;
using WeakSeg.Segmentation;
using static TorchSharp.torch;

namespace WeakSeg.Tests.Segmentation;

[Collection("Torch")]
public class SegmenterHeadTests
{
    [Fact]
    public void Class_masks_are_cosine_similarities_times_the_scale()
    {
        using var scope = torch.NewDisposeScope();
        var patches = torch.tensor(new float[] { 3, 4, /* second token */ -2, 0 }, new long[] { 1, 2, 2 });
        var classes = torch.tensor(new float[] { 1, 0, 0, 2, 5, 5 }, new long[] { 1, 3, 2 });
        double s = 1 / Math.Sqrt(2);
        var m = MaskTransformerDecoder.ClassMasks(patches, classes, s).data<float>().ToArray();     // [1, 2, 3]
        double r = 1 / Math.Sqrt(2);
        double[] expected = [0.6 * s, 0.8 * s, (0.6 * r + 0.8 * r) * s, -1 * s, 0, -r * s];
        for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i], m[i], 5);
    }

    [Fact]
    public void Decoder_output_is_layer_normalised_over_classes_on_the_patch_grid()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(1);
        using var decoder = new MaskTransformerDecoder(encoderDim: 24, dim: 16, heads: 2, layers: 2, numClasses: 5, dropout: 0);
        decoder.eval();
        var tokens = torch.randn(2, 6, 24);
        var grid = decoder.Forward(tokens, 2, 3);
        Assert.Equal(new long[] { 2, 5, 2, 3 }, grid.shape);
        // mask_norm starts as weight 1, bias 0: per pixel the 5 class scores have mean 0 and (biased) variance 1 (up to ε).
        var mean = grid.mean(new long[] { 1 });
        var variance = grid.var(1, unbiased: false);
        Assert.True(mean.abs().max().item<float>() < 1e-5);
        Assert.True(variance.min().item<float>() > 0.9 && variance.max().item<float>() <= 1.0001);   // v/(v + ε) of the pre-norm variance v
        // Row-major token → grid: token 4 of image 1 is grid cell (1, 1).
        var direct = decoder.Forward(tokens.narrow(0, 1, 1), 2, 3);
        Assert.Equal(grid[1, 2, 1, 1].item<float>(), direct[0, 2, 1, 1].item<float>(), 5);
    }

    [Fact]
    public void Segmenter_logits_are_the_decoder_grid_bilinearly_upsampled_to_the_input()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(2);
        using var model = new SegmenterModel(SegmentationTestData.Tiny());
        model.eval();
        using var noGrad = torch.no_grad();
        var images = torch.randn(2, 3, 32, 48);
        var logits = model.call(images);
        Assert.Equal(new long[] { 2, 4, 32, 48 }, logits.shape);
        using var features = model.Encoder.ForwardFeatures(images);
        var grid = model.Decoder.Forward(features.PatchTokens, 4, 6);
        // bilinear upsampling, align_corners false
        var expected = nn.functional.interpolate(grid, size: new long[] { 32, 48 }, mode: InterpolationMode.Bilinear, align_corners: false);
        Assert.True(expected.sub(logits).abs().max().item<float>() < 1e-5);
        // an interior pixel by hand: y = 11 → source (11 + 0.5)/8 − 0.5 = 0.9375 (cells 0/1 with weights 0.0625/0.9375); x = 20 → 2.0625 (cells 2/3, 0.9375/0.0625)
        double v = 0;
        foreach (var (gy, wy) in new[] { (0, 0.0625), (1, 0.9375) })
            foreach (var (gx, wx) in new[] { (2, 0.9375), (3, 0.0625) })
                v += wy * wx * grid[0, 1, gy, gx].item<float>();
        Assert.Equal(v, logits[0, 1, 11, 20].item<float>(), 4);
        // other sizes are zero-padded at the right/bottom to multiples of the patch size, then the logits are cropped back
        var odd = torch.randn(1, 3, 30, 37);
        var oddLogits = model.call(odd);
        Assert.Equal(new long[] { 1, 4, 30, 37 }, oddLogits.shape);
        var paddedLogits = model.call(nn.functional.pad(odd, new long[] { 0, 3, 0, 2 }));
        Assert.True(paddedLogits.narrow(2, 0, 30).narrow(3, 0, 37).sub(oddLogits).abs().max().item<float>() < 1e-6);
    }

    [Fact]
    public void Configuration_round_trips_through_json_and_presets_are_valid()
    {
        // presets leave the class count to the dataset
        Assert.Equal([SegmentationConfig.UnboundClassCount], SegmentationConfig.Paper.Validate());
        Assert.Equal([SegmentationConfig.UnboundClassCount], SegmentationConfig.Cpu.Validate());
        foreach (var c in new[] { SegmentationConfig.Paper with { NumClasses = 20 }, SegmentationConfig.Cpu with { NumClasses = 10 }, SegmentationTestData.Tiny() })
        {
            Assert.Empty(c.Validate());
            Assert.Equal(c.ToJson(), SegmentationConfig.FromJson(c.ToJson()).ToJson());
        }
        Assert.Equal(480 / 120, SegmentationConfig.Paper.CropSize / SegmentationConfig.Paper.ClipPatchSize);
        Assert.Equal(SegmentationConfig.Cpu.CropSize / 4, SegmentationConfig.Cpu.ClipPatchSize);
        Assert.Equal(320, SegmentationConfig.Paper.WindowStride);
        var e = Assert.Throws<WeakSegException>(() => (SegmentationTestData.Tiny() with { CropSize = 30 }).EnsureValid());
        Assert.Contains("CropSize (30) must be a multiple of the patch size (8)", e.Message);
        Assert.Equal(1e-4, WeakSeg.Training.LearningRateSchedule.PolyAt(0, 100, 1e-4, 1e-5, 0.9), 12);
        Assert.Equal(9e-5 * Math.Pow(0.5, 0.9) + 1e-5, WeakSeg.Training.LearningRateSchedule.PolyAt(50, 100, 1e-4, 1e-5, 0.9), 12);
    }

    [Fact]
    public void Encoder_and_decoder_start_from_truncated_normal_weights()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(6);
        using var model = new SegmenterModel(SegmentationTestData.Tiny());
        var p = model.named_parameters().ToDictionary(x => x.name, x => x.parameter);
        foreach (var name in new[] { "encoder.pos_embed", "encoder.blocks.0.attn.qkv.weight", "decoder.cls_emb", "decoder.blocks.0.mlp.fc1.weight", "decoder.proj_dec.weight" })
            Assert.InRange(p[name].std().item<float>(), 0.015, 0.025);
        Assert.Equal(0f, p["decoder.proj_dec.bias"].abs().max().item<float>());
        // proj_patch/proj_classes: D^-1/2 · N(0, 1) with D = 32
        Assert.InRange(p["decoder.proj_patch"].std().item<float>(), 0.8 / Math.Sqrt(32), 1.2 / Math.Sqrt(32));
    }

    [Fact]
    public void Argmax_and_refinement_hook_decide_the_labels()
    {
        using var scope = torch.NewDisposeScope();
        float[] probs = [0.6f, 0.2f, /* class 1 */ 0.3f, 0.5f, /* class 2 */ 0.1f, 0.3f];
        Assert.Equal(new byte[] { 0, 1 }, SegmentationPredictor.Argmax(probs, 3, 2, 1).Labels);
        torch.manual_seed(3);
        using var model = new SegmenterModel(SegmentationTestData.Tiny());
        var predictor = new SegmentationPredictor(model, torch.CPU);
        var image = new RgbImage(20, 12);
        int calls = 0;
        var options = new SegmentationInferenceOptions
        {
            Flip = false,
            Refine = (img, p, c) =>
            {
                calls++;
                Assert.Same(image, img);
                Assert.Equal(4, c);
                Assert.Equal(4 * 12 * 20, p.Length);
                var r = new float[p.Length];
                Array.Fill(r, 0f, 0, p.Length);
                for (int i = 0; i < 12 * 20; i++) r[2 * 240 + i] = 1;      // everything class 2
                return r;
            },
        };
        var labels = predictor.Predict(image, options);
        Assert.Equal(1, calls);
        Assert.All(labels.Labels, l => Assert.Equal(2, l));
        var raw = predictor.Probabilities(image, options with { Refine = null });
        for (int i = 0; i < 240; i += 37) Assert.Equal(1.0, raw[i] + raw[240 + i] + raw[480 + i] + raw[720 + i], 4);
    }
}
