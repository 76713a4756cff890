using TorchSharp;
using WeakSeg.Interop;
using WeakSeg.Methods.AuxSegNet;
using WeakSeg.Tests.Support;
using static TorchSharp.torch;

namespace WeakSeg.Tests.Methods.AuxSegNet;

/// <summary>
/// Golden parity with the official AuxSegNet code (tests/fixtures/reference/README.md, cases <c>auxsegnet_heads_tiny</c> and
/// <c>auxsegnet_fusion_cam</c>): the heads on given conv6 features (16 channels, branch width 8, 4 foreground classes), and the
/// CAM/saliency fusion rule.
/// </summary>
[Collection("Torch")]
public class AuxSegNetReferenceFixtureTests
{
    const double Tolerance = 1e-4;

    static SafetensorsFile Heads => SafetensorsFile.Read(TestPaths.Fixture("reference", "auxsegnet_heads_tiny.safetensors"));

    /// <summary>The fixture's head sizes, the ICCV network (no unary affinity), official quirks.</summary>
    internal static AuxSegNetConfig TinyConfig => AuxSegNetConfig.Cpu with { NumClasses = 4, BranchWidth = 8, UnaryAffinity = false, PretrainedTrunk = false };

    /// <summary>Heads with the fixture's weights (every official key used, each parameter loaded exactly once); parameters the
    /// fixture does not have (the unary branch) are left as built.</summary>
    internal static AuxSegNetHeads LoadHeads(AuxSegNetConfig config)
    {
        var heads = new AuxSegNetHeads(config, 16);
        var weights = SafetensorsFile.Read(TestPaths.Fixture("reference", "auxsegnet_heads_tiny.weights.safetensors")).ToTorchDictionary();
        var loaded = new HashSet<string>();
        using (torch.no_grad())
            foreach (var (name, parameter) in heads.named_parameters())
            {
                if (!weights.TryGetValue(name, out var value)) continue;
                if (name == "cross_att.0.weight" && config.CrossTaskKernel == 1) value = value[.., .., 1..2, 1..2];   // the centre tap
                parameter.copy_(value);
                loaded.Add(name);
            }
        Assert.Equal(weights.Keys.OrderBy(k => k, StringComparer.Ordinal), loaded.OrderBy(k => k, StringComparer.Ordinal));
        heads.eval();
        return heads;
    }

    /// <summary>Fixture key → the output it records (the <c>large_</c> case records the first two and the last four).</summary>
    static readonly (string Key, Func<AuxSegNetOutput, Tensor> Value)[] Recorded =
    [
        ("x_cls", o => o.Logits), ("cam", o => o.Cam),
        ("seg_feats", o => o.SegmentationFeatures), ("sal_feats", o => o.SaliencyFeatures),
        ("seg_aff", o => o.SegmentationAffinity), ("sal_aff", o => o.SaliencyAffinity),
        ("seg_enh", o => o.SegmentationEnhanced), ("sal_enh", o => o.SaliencyEnhanced),
        ("cross_w", o => o.CrossTaskWeights!), ("cross_aff", o => o.CrossTaskAffinity!),
        ("init_seg", o => o.InitialSegmentation), ("init_sal", o => o.InitialSaliency),
        ("refined_seg", o => o.RefinedSegmentation), ("refined_sal", o => o.RefinedSaliency),
    ];

    /// <param name="input">conv6 (6×7, every output recorded) or conv6_large (20×21, where every dilation reaches real neighbours)</param>
    [Theory]
    [InlineData("conv6")]
    [InlineData("conv6_large")]
    public void Heads_match_the_official_features_affinities_cross_task_fusion_and_refinement(string input)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var io = Heads;
        using var heads = LoadHeads(TinyConfig);
        using var o = heads.Forward(io.ToTorch(input));
        bool large = input == "conv6_large";
        var compared = large ? Recorded.Take(2).Concat(Recorded.TakeLast(4)) : Recorded;
        foreach (var (key, value) in compared)
            TensorAssert.Close(io.ToTorch(large ? "large_" + key : key), value(o), Tolerance, key);
        Assert.Null(o.SegmentationUnary);
    }

    [Fact]
    public void Scaled_affinity_correction_divides_the_official_logits_by_root_d()
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var io = Heads;
        var weights = SafetensorsFile.Read(TestPaths.Fixture("reference", "auxsegnet_heads_tiny.weights.safetensors"));
        using var heads = LoadHeads(TinyConfig with { ScaledAffinity = true });
        using var o = heads.Forward(io.ToTorch("conv6"));
        TensorAssert.Close(io.ToTorch("seg_feats"), o.SegmentationFeatures, Tolerance, "features unchanged");
        var f = io.ToTorch("seg_feats");
        var q = nn.functional.conv2d(f, weights.ToTorch("seg_att.theta.weight"), weights.ToTorch("seg_att.theta.bias")).flatten(2);
        var k = nn.functional.conv2d(f, weights.ToTorch("seg_att.phi.weight"), weights.ToTorch("seg_att.phi.bias")).flatten(2);
        var expected = q.transpose(1, 2).bmm(k).div(Math.Sqrt(8)).softmax(-1);
        TensorAssert.Close(expected, o.SegmentationAffinity, Tolerance, "softmax(θᵀφ / √8)");
        Assert.True(o.SegmentationAffinity.sub(io.ToTorch("seg_aff")).abs().max().item<float>() > 1e-3, "the correction changes the affinity");
    }

    [Fact]
    public void Per_entry_cross_task_weighting_correction_uses_no_neighbouring_entries()
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var io = Heads;
        var weights = SafetensorsFile.Read(TestPaths.Fixture("reference", "auxsegnet_heads_tiny.weights.safetensors"));
        using var heads = LoadHeads(TinyConfig with { CrossTaskKernel = 1 });
        using var o = heads.Forward(io.ToTorch("conv6"));
        var stacked = torch.stack([io.ToTorch("seg_aff"), io.ToTorch("sal_aff")], 1);                       // [B, 2, N, N]
        var hidden = nn.functional.relu(torch.einsum("oc,bcij->boij", weights.ToTorch("cross_att.0.weight")[.., .., 1, 1], stacked));
        var logits = torch.einsum("oc,bcij->boij", weights.ToTorch("cross_att.2.weight")[.., .., 0, 0], hidden)
            .add(weights.ToTorch("cross_att.2.bias").reshape(1, 2, 1, 1));
        TensorAssert.Close(logits.softmax(1), o.CrossTaskWeights!, Tolerance, "per-entry weights");
        Assert.True(o.CrossTaskWeights!.sub(io.ToTorch("cross_w")).abs().max().item<float>() > 1e-4, "the official 3×3 conv mixes neighbouring entries");
    }

    [Fact]
    public void Unary_affinity_with_uniform_weights_adds_the_mean_prediction_to_the_official_refinement()
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var io = Heads;
        using var heads = LoadHeads(TinyConfig with { UnaryAffinity = true });
        foreach (var block in new[] { heads.seg_unary!, heads.sal_unary! })                 // u uniform, context transform 0
            foreach (var p in block.parameters()) p.zero_();
        using var o = heads.Forward(io.ToTorch("conv6"));
        TensorAssert.Close(torch.full(2, 42, 1.0 / 42), o.CrossTaskUnary!, 1e-6, "uniform unary affinity");
        TensorAssert.Close(io.ToTorch("init_seg"), o.InitialSegmentation, Tolerance, "init_seg unchanged by a zero context");
        foreach (var (init, refined, got) in new[] { ("init_seg", "refined_seg", o.RefinedSegmentation), ("init_sal", "refined_sal", o.RefinedSaliency) })
        {
            var expected = io.ToTorch(refined).add(io.ToTorch(init).mean([2, 3], keepdim: true)).mul(0.5);
            TensorAssert.Close(expected, got, Tolerance, "½(A_ct·init + mean init) for " + refined);
        }
    }

    [Fact]
    public void Fusion_rule_matches_the_official_labels_with_the_crafted_cases()
    {
        using var scope = torch.NewDisposeScope();
        var io = SafetensorsFile.Read(TestPaths.Fixture("reference", "auxsegnet_fusion_cam.safetensors"));
        var labels = AuxSegNetLabels.Fuse(io.ToTorch("cam"), io.ToTorch("sal"), io.ToTorch("label"));
        var expected = io.ToTorch("pseudo_label");
        Assert.Equal(ScalarType.Int64, labels.dtype);
        Assert.Equal(expected.data<long>().ToArray(), labels.data<long>().ToArray());
        Assert.Equal(new long[] { 0, 1, 2, 3, 4, 255 }, labels.unique().Item1.data<long>().ToArray());
        // crafted pixels [b, row, col, expected]: absent-class suppression, exact thresholds (not above), the next float above, ties
        foreach (var (b, r, c, value) in new[] { (0, 0, 0, 1L), (0, 0, 1, 255L), (0, 0, 2, 255L), (0, 0, 3, 255L), (0, 0, 4, 1L), (0, 0, 5, 0L),
                     (0, 0, 6, 1L), (0, 0, 7, 1L), (0, 0, 8, 3L), (0, 0, 9, 0L), (1, 0, 0, 2L), (1, 0, 1, 255L), (1, 0, 2, 255L), (1, 0, 3, 2L) })
            Assert.Equal(value, labels[b, r, c].item<long>());
        // the 3-D saliency form gives the same labels
        Assert.Equal(expected.data<long>().ToArray(), AuxSegNetLabels.Fuse(io.ToTorch("cam"), io.ToTorch("sal").squeeze(1), io.ToTorch("label")).data<long>().ToArray());
    }

    [Fact]
    public void Fusion_compares_in_float32_so_a_value_equal_to_the_threshold_is_not_above_it()
    {
        using var scope = torch.NewDisposeScope();
        var cam = torch.tensor(new[] { 0.2f, MathF.BitIncrement(0.2f), 0.9f, 0.0f }).reshape(1, 1, 1, 4);
        var sal = torch.tensor(new[] { 0.5f, 0.5f, 0.06f, MathF.BitIncrement(0.06f) }).reshape(1, 1, 4);
        var labels = AuxSegNetLabels.Fuse(cam, sal, torch.ones(1, 1));
        // CAM at float32(0.2) (as a double 0.2000000030 > 0.2) is not object; saliency at float32(0.06) is not salient
        Assert.Equal(new long[] { 255, 1, 255, 255 }, labels.data<long>().ToArray());
    }

    [Fact]
    public void Label_update_refines_the_cam_with_the_official_cross_task_affinity_and_averages_the_saliency()
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var io = Heads;
        using var heads = LoadHeads(TinyConfig);
        using var o = heads.Forward(io.ToTorch("conv6"));
        var offTheShelf = torch.linspace(0, 1, 2 * 12 * 14).reshape(2, 12, 14);
        var imageLabels = torch.tensor(new float[] { 1, 0, 1, 0, 0, 1, 1, 1 }).reshape(2, 4);
        var (labels, saliency) = AuxSegNetLabels.Update(o, offTheShelf, imageLabels);
        // by hand from the official tensors: ReLU(cam)/max per class, one propagation by cross_aff, bilinear ×2
        var cam = nn.functional.relu(io.ToTorch("cam"));
        cam = cam.div(cam.amax([2, 3], keepdim: true).add(1e-5));
        var refined = io.ToTorch("cross_aff").bmm(cam.flatten(2).transpose(1, 2)).transpose(1, 2).reshape(2, 4, 6, 7);
        var camUp = nn.functional.interpolate(refined, [12, 14], mode: InterpolationMode.Bilinear, align_corners: false);
        var salUp = nn.functional.interpolate(io.ToTorch("refined_sal"), [12, 14], mode: InterpolationMode.Bilinear, align_corners: false).sigmoid().squeeze(1);
        var expectedSaliency = salUp.add(offTheShelf).div(2);
        TensorAssert.Close(expectedSaliency, saliency, Tolerance, "0.5·(σ(refined_sal)↑ + S)");
        Assert.Equal(AuxSegNetLabels.Fuse(camUp, expectedSaliency, imageLabels).data<long>().ToArray(), labels.data<long>().ToArray());
        var values = labels.data<long>().ToHashSet();
        Assert.Contains(255L, values);
        Assert.DoesNotContain(2L, labels[0].data<long>().ToArray());                     // class 2 is absent from image 0
    }
}
