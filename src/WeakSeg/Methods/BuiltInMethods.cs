using WeakSeg.Methods.AuxSegNet;
using WeakSeg.Methods.Baselines;
using WeakSeg.Methods.CamResNet;
using WeakSeg.Methods.Fsr;
using WeakSeg.Methods.MctFormer;
using WeakSeg.Methods.MctFormerPlus;
using WeakSeg.Methods.MoRe;
using WeakSeg.Methods.ToCo;
using WeakSeg.Methods.WeakTr;
using static WeakSeg.Methods.LocalizationMapKind;

namespace WeakSeg.Methods;

/// <summary>
/// The catalog of built-in methods: one registration line per method (name, description, maps as data, constructor), and the
/// methods the product's recipes start from. The only type outside a method's folder that names a method; a new method adds
/// its folder and one line to <see cref="RegisterAll"/>.
/// </summary>
public static class BuiltInMethods
{
    public const string MctFormerV1 = MctFormerMethod.V1Name, MctFormerV2 = MctFormerMethod.V2Name, VitCls = VitClsMethod.MethodName,
        MctFormerPlus = MctFormerPlusMethod.MethodName, Cam = CamMethod.MethodName, WeakTr = WeakTrMethod.MethodName,
        ToCo = ToCoMethod.MethodName, MoRe = MoReMethod.MethodName;

    /// <summary>The method <c>weakseg demo</c> trains: MCTformer+ (the journal version of MCTformer-V2) on its cpu preset, the best
    /// class-token method on the built-in benchmark (fused map on the frozen ImageNet ResNet-18 stem).</summary>
    public const string DemoMethod = MctFormerPlus;

    /// <summary>The method <c>weakseg pipeline</c> trains unless told otherwise.</summary>
    public const string PipelineMethod = WeakTr;

    /// <summary>The methods <c>weakseg demo --compare</c> trains and scores.</summary>
    public static IReadOnlyList<string> Compared => [MctFormerV1, MctFormerV2, VitCls, Cam];

    /// <summary>
    /// Attention methods: all three maps. paper preset: the paper's final map, refined (MCTformer: patch affinity · fused map; WeakTr:
    /// the fine CAM PA^ · (coarse ⊙ CA^)). cpu preset (a ViT trained from scratch): class-to-patch attention, because the conv-head CAM
    /// that the fused and fine maps multiply in is poor without pretrained weights. Measured on the built-in benchmark (train split,
    /// scale 1 + flip, best threshold): WeakTr class-to-patch (AAF-weighted cross attention of all layers) 38.5 % vs fine CAM 15.0 % vs
    /// coarse CAM 7.8 %; MCTformer-V2 class-to-patch 29.7 % vs refined 16.1 % vs fused 11.1 %.
    /// </summary>
    static MethodMaps AllMaps => new([Refined, Fused, ClassToPatch], PaperDefault: Refined, CpuDefault: ClassToPatch);

    /// <summary>Single-stage methods: one map, the final classifier's CAM (as fused: the method's map, without affinity refinement).</summary>
    static MethodMaps CamOnly => new([Fused], PaperDefault: Fused, CpuDefault: Fused);

    internal static void RegisterAll()
    {
        MethodRegistry.Register<MctFormerConfig>(MctFormerV1, "MCTformer-V1: one class token per class; maps = class-to-patch attention, refined by patch affinity.", AllMaps, c => new MctFormerMethod(c), c => c with { Variant = MctFormerVariant.V1 });
        MethodRegistry.Register<MctFormerConfig>(MctFormerV2, "MCTformer-V2: V1 plus a PatchCAM head; maps = class-to-patch ⊙ PatchCAM, refined by patch affinity.", AllMaps, c => new MctFormerMethod(c), c => c with { Variant = MctFormerVariant.V2 });
        MethodRegistry.Register<MctFormerPlusConfig>(MctFormerPlus, "MCTformer+: class/patch position embeddings, GWRP PatchCAM logits, contrastive class-token loss; maps = √(mean class-to-patch ⊙ PatchCAM), refined by patch affinity.", new([Refined, Fused, ClassToPatch, PatchCam], PaperDefault: Refined, CpuDefault: Fused), c => new MctFormerPlusMethod(c));
        MethodRegistry.Register<VitClsConfig>(VitCls, "ViT classifier with one class token; map = class-agnostic class-token attention (baseline).", AllMaps, c => new VitClsMethod(c));
        MethodRegistry.Register<CamBaselineConfig>(Cam, "ViT + global average pooling + linear classifier; map = CAM (baseline).", new([Refined, Fused], PaperDefault: Refined, CpuDefault: Refined), c => new CamMethod(c));
        MethodRegistry.Register<CamResNetConfig>(CamResNetMethod.MethodName, "CAM on the ImageNet ResNet-18 (packaged weights): dilated stride-8 trunk + 1×1 classifier + GAP; map = CAM (baseline).", CamOnly, c => new CamResNetMethod(c));
        MethodRegistry.Register<WeakTrConfig>(WeakTr, "WeakTr: C class tokens, conv coarse CAM, adaptive attention fusion of all heads → fine CAM (fusion: aaf, mean_sum or fixed_random).", AllMaps, c => new WeakTrMethod(c));
        MethodRegistry.Register<ToCoConfig>(ToCo, "ToCo (single stage): ViT + GMP classifier, aux classifier, patch-token contrast, class-token contrast (model.use_ctc; paper on, cpu off), PAR-refined segmentation decoder; map = CAM.", CamOnly, c => new ToCoMethod(c), segmentationDecoder: true);
        MethodRegistry.Register<FsrConfig>(FsrMethod.MethodName, "FSR (single stage, ToCo base): uncertainty-guided masking, certain-feature aggregation, self-distillation from an EMA teacher; map = CAM.", CamOnly, c => new FsrMethod(c), segmentationDecoder: true);
        MethodRegistry.Register<AuxSegNetConfig>(AuxSegNetMethod.MethodName, "AuxSegNet+ (CNN): classification, segmentation and saliency heads, pairwise + unary affinities fused across tasks; labels fused from CAM and saliency; map = CAM refined by the cross-task affinity.", new([Refined, Fused], PaperDefault: Refined, CpuDefault: Refined), c => new AuxSegNetMethod(c), labelRounds: true, usesSaliency: true);
        MethodRegistry.Register<MoReConfig>(MoRe, "MoRe (single stage, ToCo base): class tokens with graph class aggregation, relation losses; maps = CAM (fused) or LAM (class-token × patch-token).", new([Fused, Lam], PaperDefault: Fused, CpuDefault: Fused), c => new MoReMethod(c), segmentationDecoder: true);
    }
}
