using TorchSharp;
using WeakSeg.Interop;
using WeakSeg.Methods.ToCo;
using WeakSeg.Refinement.Par;
using WeakSeg.Tests.Support;
using static TorchSharp.torch;

namespace WeakSeg.Tests.Methods.ToCo;

/// <summary>ToCo/MoRe label helpers against the official code (tests/fixtures/single_stage/README.md).</summary>
[Collection("Torch")]
public class ToCoLabelFixtureTests
{
    internal static SafetensorsFile Case(string name) => SafetensorsFile.Read(TestPaths.Fixture("single_stage", name + ".safetensors"));

    static void Exact(Tensor expected, Tensor actual, string name)
    {
        Assert.True(expected.shape.SequenceEqual(actual.shape), $"{name}: shape [{string.Join(", ", actual.shape)}] != [{string.Join(", ", expected.shape)}]");
        using var e = expected.to_type(ScalarType.Int64);
        using var a = actual.to_type(ScalarType.Int64);
        using var differ = e.ne(a).sum();
        Assert.True(differ.item<long>() == 0, $"{name}: {differ.item<long>()} labels differ");
    }

    [Fact]
    public void Cam_to_label_follows_the_ToCo_order_by_default()
    {
        var io = Case("toco_cam_to_label");
        using var scope = torch.NewDisposeScope();
        var cam = io.ToTorch("cam");
        var labels = io.ToTorch("cls_label");
        var box = io.ToTorch("img_box");
        var (validCam, boxMid) = ToCoPseudoLabels.CamToLabel(cam, labels, new CamLabelOptions(0.5, 0.7, 0.25, IgnoreMid: true), box);
        TensorAssert.Close(io.ToTorch("box_mid_valid_cam"), validCam, 1e-6, "valid_cam");
        Exact(io.ToTorch("box_mid_label"), boxMid, "box_mid");
        Exact(io.ToTorch("bkg_only_label"), ToCoPseudoLabels.CamToLabel(cam, labels, new CamLabelOptions(0.5, IgnoreMid: false)).Label, "bkg_only");
        Exact(io.ToTorch("box_nomid_label"), ToCoPseudoLabels.CamToLabel(cam, labels, new CamLabelOptions(0.5, IgnoreMid: false), box).Label, "box_nomid");
        var bkgAboveHigh = new CamLabelOptions(0.65, 0.6, 0.35, IgnoreMid: true);
        Exact(io.ToTorch("box_mid_bkg_gt_high_label"), ToCoPseudoLabels.CamToLabel(cam, labels, bkgAboveHigh, box).Label, "box_mid_bkg_gt_high");

        // MoRe's order keeps the class in the (high, bkg] band: the 0.62 pixel at [0, 6, 9] is background under ToCo, a class under MoRe.
        var toco = ToCoPseudoLabels.CamToLabel(cam, labels, bkgAboveHigh, box).Label;
        var more = ToCoPseudoLabels.CamToLabel(cam, labels, bkgAboveHigh with { Rule = CamLabelRule.MoRe }, box).Label;
        Assert.Equal(0L, toco[0, 6, 9].item<long>());
        Assert.True(more[0, 6, 9].item<long>() is >= 1 and <= 4, $"MoRe label at [0, 6, 9] is {more[0, 6, 9].item<long>()}");
    }

    [Fact]
    public void Cam_to_label_MoRe_rule_matches_MoRe()
    {
        var io = Case("more_cam_to_label");
        using var scope = torch.NewDisposeScope();
        var cam = io.ToTorch("cam");
        var labels = io.ToTorch("cls_label");
        var box = io.ToTorch("img_box");
        CamLabelOptions Mid(double bkg, double high, double low) => new(bkg, high, low, IgnoreMid: true, Rule: CamLabelRule.MoRe);
        var (validCam, l1) = ToCoPseudoLabels.CamToLabel(cam, labels, Mid(0.5, 0.5, 0.25));
        TensorAssert.Close(io.ToTorch("valid_cam"), validCam, 1e-6, "valid_cam");
        Exact(io.ToTorch("mid_0p5_0p25_label"), l1, "mid_0p5_0p25");
        Exact(io.ToTorch("mid_0p7_0p25_label"), ToCoPseudoLabels.CamToLabel(cam, labels, Mid(0.5, 0.7, 0.25)).Label, "mid_0p7_0p25");
        Exact(io.ToTorch("mid_0p6_0p35_bkg0p65_label"), ToCoPseudoLabels.CamToLabel(cam, labels, Mid(0.65, 0.6, 0.35)).Label, "mid_0p6_0p35_bkg0p65");
        Exact(io.ToTorch("bkg_0p5_label"), ToCoPseudoLabels.CamToLabel(cam, labels, new CamLabelOptions(0.5, IgnoreMid: false, Rule: CamLabelRule.MoRe)).Label, "bkg_0p5");
        Exact(io.ToTorch("box_mid_0p7_0p25_label"), ToCoPseudoLabels.CamToLabel(cam, labels, Mid(0.5, 0.7, 0.25), box).Label, "box_mid_0p7_0p25");
    }

    [Theory]
    [InlineData(0.7, 0.7)]
    [InlineData(0.8, 0.25)]
    public void Thresholds_out_of_order_are_rejected_with_their_values(double low, double high)
    {
        using var scope = torch.NewDisposeScope();
        var e = Assert.Throws<WeakSegException>(() => ToCoPseudoLabels.CamToLabel(torch.rand(1, 2, 4, 4), torch.ones(1, 2), new CamLabelOptions(0.5, high, low)));
        Assert.Contains($"low ({low}) must be below high ({high})", e.Message);
        var e2 = Assert.Throws<WeakSegException>(() => new ToCoConfig { LowThreshold = low, HighThreshold = high }.EnsureValid());
        Assert.Contains($"LowThreshold ({low}) must be below HighThreshold ({high})", e2.Message);
    }

    [Fact]
    public void Label_to_affinity_mask_matches_the_reference()
    {
        var io = Case("toco_label_to_aff_mask");
        using var scope = torch.NewDisposeScope();
        Exact(io.ToTorch("aff_mask"), ToCoPseudoLabels.LabelToAffinityMask(io.ToTorch("label")), "aff_mask");
    }

    [Fact]
    public void Refined_two_level_labels_match_ToCo()
    {
        var io = Case("toco_refine_cams_with_bkg_v2");
        using var scope = torch.NewDisposeScope();
        var denormalized = ToCoPseudoLabels.DenormalizeImages(io.ToTorch("inputs"));
        TensorAssert.Close(io.ToTorch("inputs_denorm"), denormalized, 1e-6, "inputs_denorm");
        var labels = io.ToTorch("cls_label");
        var box = io.ToTorch("img_box");
        var (validCam, _) = ToCoPseudoLabels.CamToLabel(io.ToTorch("cams"), labels, new CamLabelOptions(0.5, 0.7, 0.25), box);
        TensorAssert.Close(io.ToTorch("valid_cam"), validCam, 1e-6, "valid_cam");
        var refined = ToCoPseudoLabels.RefineCamsWithBackground(new PixelAdaptiveRefinement(), denormalized, validCam, labels, 0.7, 0.25, box);
        Exact(io.ToTorch("refined_label"), refined, "refined_label");
    }

    [Fact]
    public void Refined_labels_without_a_box_match_MoRe()
    {
        var io = Case("more_refine_cams_with_bkg_v2_nobox");
        using var scope = torch.NewDisposeScope();
        var refined = ToCoPseudoLabels.RefineCamsWithBackground(new PixelAdaptiveRefinement(), io.ToTorch("inputs_denorm"),
            io.ToTorch("valid_cam"), io.ToTorch("cls_label"), 0.7, 0.25, imageBox: null);
        Exact(io.ToTorch("refined_label"), refined, "refined_label");
    }
}
