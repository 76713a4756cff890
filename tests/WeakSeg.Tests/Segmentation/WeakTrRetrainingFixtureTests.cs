using TorchSharp;
using WeakSeg.Interop;
using WeakSeg.Models.Vit;
using WeakSeg.Models.Weights;
using WeakSeg.Segmentation;
using WeakSeg.Tests.Support;
using WeakSeg.Training;
using static TorchSharp.torch;

namespace WeakSeg.Tests.Segmentation;

/// <summary>
/// Golden parity of the online-retraining stage with the official WeakTr code (tests/fixtures/reference/README.md, cases
/// <c>weaktr_gradient_clipping</c> and <c>weaktr_segmenter_tiny</c>): the loss through <see cref="GradientClippingLoss.Compute"/>
/// (what <see cref="SegmentationTrainable"/> calls) and the network through <see cref="SegmenterModel.forward"/>.
/// </summary>
[Collection("Torch")]
public class WeakTrRetrainingFixtureTests
{
    const double Tolerance = 1e-4;

    static SafetensorsFile Clipping => SafetensorsFile.Read(TestPaths.Fixture("reference", "weaktr_gradient_clipping.safetensors"));
    static SafetensorsFile Segmenter => SafetensorsFile.Read(TestPaths.Fixture("reference", "weaktr_segmenter_tiny.safetensors"));

    static Tensor Scalar(SafetensorsFile io, string name) => io.ToTorch(name).reshape(new long[0]);

    [Theory]
    [InlineData(1.2, "clip", true)]
    [InlineData(0.3, "noclip", false)]
    public void Clipping_loss_its_pixel_map_and_its_gradient_match_the_official_code(double tau, string prefix, bool clips)
    {
        using var scope = torch.NewDisposeScope();
        var io = Clipping;
        var logits = io.ToTorch("seg_pred").requires_grad_(true);
        var target = io.ToTorch("seg_gt");
        var terms = GradientClippingLoss.Compute(logits, target, SegmentationDecoderLoss.GradientClipping, ClipSignal.CrossEntropy, patchSize: 4, startValue: tau);
        TensorAssert.Close(Scalar(io, $"{prefix}_loss"), terms.Total, Tolerance, "loss");
        var parts = terms.Parts.ToDictionary(p => p.Name, p => p.Value);
        Assert.Equal(clips ? 1f : 0f, parts["clipping"].item<float>());
        Assert.Equal(Scalar(io, "lambda_global").item<float>(), parts["lambda_global"].item<float>(), 5);
        terms.Total.backward();
        TensorAssert.Close(io.ToTorch($"{prefix}_grad_seg_pred"), logits.grad!, Tolerance, "d loss / d seg_pred");

        using var noGrad = torch.no_grad();
        var ce = GradientClippingLoss.PixelCrossEntropy(logits, target);
        TensorAssert.Close(io.ToTorch("ori_loss"), ce, Tolerance, "ori_loss");
        var result = GradientClippingLoss.Clip(ce, target.ne(255), 4, tau);
        Assert.Equal(clips, result.Clipping);
        TensorAssert.Close(io.ToTorch($"{prefix}_loss_map"), result.LossMap, Tolerance, "loss map");
        Assert.True(io.ToTorch($"{prefix}_kept_mask").eq(result.Kept.to_type(ScalarType.Int64)).all().item<bool>(), "kept mask");
        if (clips)
        {
            TensorAssert.Close(io.ToTorch("lambda_local"), result.PatchMeans!, Tolerance, "lambda_local");
            TensorAssert.Close(io.ToTorch("threshold"), result.Threshold!, Tolerance, "threshold");
            Assert.Equal(134, result.Kept.logical_not().sum().item<long>());
        }
    }

    [Fact]
    public void Naive_decoder_loss_is_the_official_unclipped_mean_over_all_pixels()
    {
        using var scope = torch.NewDisposeScope();
        var io = Clipping;
        var logits = io.ToTorch("seg_pred").requires_grad_(true);
        var target = io.ToTorch("seg_gt");
        Assert.True(target.eq(255).any().item<bool>(), "the fixture has ignored pixels");
        var terms = GradientClippingLoss.Compute(logits, target, SegmentationDecoderLoss.Naive, ClipSignal.CrossEntropy, 4, 1.2);
        TensorAssert.Close(Scalar(io, "noclip_loss"), terms.Total, Tolerance, "naive loss");
        terms.Total.backward();
        TensorAssert.Close(io.ToTorch("noclip_grad_seg_pred"), logits.grad!, Tolerance, "naive gradient");
    }

    [Fact]
    public void Excluding_ignored_pixels_averages_over_labelled_pixels_only()
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var io = Clipping;
        var logits = io.ToTorch("seg_pred");
        var target = io.ToTorch("seg_gt");
        var ce = io.ToTorch("ori_loss").data<float>().ToArray();
        var labels = target.data<long>().ToArray();
        // brute force: λ_global over labelled pixels; λ_i over the labelled pixels of patch i of both images
        double sum = 0; int count = 0;
        for (int i = 0; i < ce.Length; i++) if (labels[i] != 255) { sum += ce[i]; count++; }
        double global = sum / count;
        var result = GradientClippingLoss.Clip(GradientClippingLoss.PixelCrossEntropy(logits, target), target.ne(255), 4, 1.2, IgnoredPixelsInMeans.Exclude);
        Assert.Equal(global, result.GlobalMean, 5);
        for (int pr = 0; pr < 4; pr++)
            for (int pc = 0; pc < 6; pc++)
            {
                double s = 0; int n = 0;
                for (int b = 0; b < 2; b++)
                    for (int y = pr * 4; y < pr * 4 + 4; y++)
                        for (int x = pc * 4; x < pc * 4 + 4; x++)
                        {
                            int i = (b * 16 + y) * 24 + x;
                            if (labels[i] != 255) { s += ce[i]; n++; }
                        }
                double lambda = n == 0 ? 0 : s / n;
                Assert.Equal(lambda, result.PatchMeans![0, pr, pc].item<float>(), 4);
                Assert.Equal(Math.Max(lambda, global), result.Threshold![0, pr, pc].item<float>(), 4);
            }
        var terms = GradientClippingLoss.Compute(logits, target, SegmentationDecoderLoss.Naive, ClipSignal.CrossEntropy, 4, 1.2, IgnoredPixelsInMeans.Exclude);
        Assert.Equal(global, terms.Total.item<float>(), 5);
        Assert.True(Math.Abs(global - Scalar(io, "noclip_loss").item<float>()) > 1e-3, "the variant differs from the official mean");
    }

    [Fact]
    public void Sides_not_divisible_by_the_patch_size_fail_as_officially_or_use_smaller_edge_patches()
    {
        using var scope = torch.NewDisposeScope();
        var logits = torch.randn(new long[] { 2, 3, 18, 18 }, generator: new Generator(3));
        var target = torch.randint(0, 3, new long[] { 2, 18, 18 }, generator: new Generator(4));
        var error = Assert.Throws<WeakSegException>(() =>
            GradientClippingLoss.Compute(logits, target, SegmentationDecoderLoss.GradientClipping, ClipSignal.CrossEntropy, 4, 100));
        Assert.Contains("18×18", error.Message);

        var ce = GradientClippingLoss.PixelCrossEntropy(logits, target);
        var result = GradientClippingLoss.Clip(ce, target.ne(255), 4, 100, IgnoredPixelsInMeans.CountAsZero, ClipPatchRemainder.SmallerEdgePatches);
        Assert.Equal(new long[] { 1, 5, 5 }, result.PatchMeans!.shape);
        var values = ce.data<float>().ToArray();
        // the last patch row and column are 2 pixels wide: λ over their 2×2·2 (corner) or 4×2·2 pixels
        foreach (var (pr, pc) in new[] { (0, 0), (4, 4), (2, 4), (4, 1) })
        {
            double s = 0; int n = 0;
            for (int b = 0; b < 2; b++)
                for (int y = pr * 4; y < Math.Min(18, pr * 4 + 4); y++)
                    for (int x = pc * 4; x < Math.Min(18, pc * 4 + 4); x++) { s += values[(b * 18 + y) * 18 + x]; n++; }
            Assert.Equal(s / n, result.PatchMeans[0, pr, pc].item<float>(), 4);
        }
        Assert.Contains("ClipPatchSize", string.Join(";", (SegmentationConfig.Cpu with { CropSize = 100, ClipPatchSize = 24 }).Validate()));
    }

    /// <summary>The fixture's segmenter: ViT (patch 8, D 32, 2 layers, 2 heads) + MaskTransformer (2 layers, 2 heads), 5 classes.</summary>
    static SegmentationConfig SegmenterConfig => new()
    {
        NumClasses = 4,
        Backbone = new VitConfig { PatchSize = 8, EmbedDim = 32, Depth = 2, NumHeads = 2, MlpRatio = 4, QkvBias = true },
        CropSize = 32,
        DecoderLayers = 2,
        DecoderHeads = 2,
        DecoderDropout = 0.1,
        EncoderDropPath = 0,
        ClipPatchSize = 8,
    };

    static SegmenterModel LoadSegmenter(SegmentationConfig config)
    {
        var model = new SegmenterModel(config);
        var report = TimmWeightImport.LoadFile(model, TestPaths.Fixture("reference", "weaktr_segmenter_tiny.weights.safetensors"));
        Assert.Empty(report.Missing);
        Assert.Empty(report.Unexpected);
        Assert.Empty(report.Skipped);
        Assert.Equal(63, report.Loaded.Count);
        model.eval();
        return model;
    }

    [Theory]
    [InlineData("", 32, 32)]
    [InlineData("_30x38", 30, 38)]
    public void Segmenter_matches_the_official_network_on_square_and_padded_non_square_inputs(string suffix, int height, int width)
    {
        using var model = LoadSegmenter(SegmenterConfig);
        var io = Segmenter;
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var images = io.ToTorch("inputs" + suffix);
        var masks = model.call(images);
        Assert.Equal(new long[] { images.shape[0], 5, height, width }, masks.shape);
        TensorAssert.Close(io.ToTorch("masks" + suffix), masks, Tolerance, "masks");

        // the stages: encoder tokens (final norm, class token first) and the decoder grid on the zero-padded image
        var padded = nn.functional.pad(images, new long[] { 0, (8 - width % 8) % 8, 0, (8 - height % 8) % 8 });
        using var features = model.Encoder.ForwardFeatures(padded);
        TensorAssert.Close(io.ToTorch("enc_features" + suffix), torch.cat(new[] { features.ClassTokens, features.PatchTokens }, 1), Tolerance, "enc_features");
        var grid = model.Decoder.Forward(features.PatchTokens, features.GridHeight, features.GridWidth);
        TensorAssert.Close(io.ToTorch("dec_masks" + suffix), grid, Tolerance, "dec_masks");
    }

    [Fact]
    public void Segmenter_quirk_options_default_to_the_official_values_and_change_the_output_when_corrected()
    {
        var official = SegmenterConfig;
        Assert.Equal(1e-5, official.EncoderConfig.LayerNormEps);
        Assert.Equal(PositionEmbeddingResize.BilinearSize, official.EncoderConfig.PositionEmbeddingResize);
        Assert.False(official.ScaleMasksBySqrtDim);
        var file = Segmenter;
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var images = file.ToTorch("inputs_30x38");
        var expected = file.ToTorch("masks_30x38");

        // bicubic (DeiT/timm) position-embedding resize instead of Segmenter's bilinear one: the 4×5 grid changes the output
        using (var bicubic = LoadSegmenter(official with { PositionEmbeddingResize = PositionEmbeddingResize.TimmSize }))
            Assert.True(bicubic.call(images).sub(expected).abs().max().item<float>() > 1e-3);

        // Eq. 8's 1/√D before the class LayerNorm: the LayerNorm no longer removes the scale exactly (ε), the masks change
        using (var scaled = LoadSegmenter(official with { ScaleMasksBySqrtDim = true }))
        {
            Assert.Equal(1 / Math.Sqrt(32), scaled.Decoder.MaskScale, 12);
            Assert.True(scaled.call(images).sub(expected).abs().max().item<float>() > 1e-5);
        }
        using (var plain = LoadSegmenter(official))
            Assert.Equal(1.0, plain.Decoder.MaskScale);

        // ε = 1e-6 (the DeiT value) reaches every LayerNorm of encoder and decoder
        using var eps6 = LoadSegmenter(official with { LayerNormEps = 1e-6 });
        var norms = eps6.modules().OfType<TorchSharp.Modules.LayerNorm>().ToList();
        Assert.Equal(2 * 2 + 1 + 2 * 2 + 2, norms.Count);
        Assert.All(norms, n => Assert.Equal(1e-6, n.eps, 12));
        using var eps5 = LoadSegmenter(official);
        Assert.All(eps5.modules().OfType<TorchSharp.Modules.LayerNorm>(), n => Assert.Equal(1e-5, n.eps, 12));
    }
}
