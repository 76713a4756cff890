using System.Text.Json.Nodes;
using WeakSeg.Methods;
using WeakSeg.Methods.ToCo;
using WeakSeg.Pipelines;

namespace WeakSeg.Tests.Reliability;

/// <summary>Each method carries its pseudo-label threshold as data (the official code's value), which the pipeline and the demo take
/// when no threshold is given; the oracle sweep is consulted only when asked for.</summary>
public class PresetThresholdTests
{
    public static TheoryData<string, double, string> Expected => new()
    {
        { BuiltInMethods.MctFormerV1, 0.39, "psa/infer_aff.py --bg_thr default 0.39 (xulianuwa/MCTformer)" },
        { BuiltInMethods.MctFormerV2, 0.39, "psa/infer_aff.py --bg_thr default 0.39 (xulianuwa/MCTformer)" },
        { BuiltInMethods.WeakTr, 0.43, "evaluation.py --t 43 (hustvl/WeakTr)" },
        { BuiltInMethods.ToCo, 0.5, "ToCo's --bkg_thre (official VOC 0.5" },
        { BuiltInMethods.MoRe, 0.5, "zwyang6/MoRe" },
        { WeakSeg.Methods.MctFormerPlus.MctFormerPlusMethod.MethodName, 0.5, "MCTformer+'s official evaluation sweeps the background threshold" },
        { WeakSeg.Methods.Fsr.FsrMethod.MethodName, 0.5, "FSR's CAM-label background threshold (official VOC 0.5" },
        { WeakSeg.Methods.AuxSegNet.AuxSegNetMethod.MethodName, 0.2, "AuxSegNet's fusion_cam CAM threshold 0.2 (xulianuwa/AuxSegNet tool/imutils.py" },
        { BuiltInMethods.Cam, 0.5, "no value from the method's authors" },
        { BuiltInMethods.VitCls, 0.5, "no value from the method's authors" },
        { WeakSeg.Methods.CamResNet.CamResNetMethod.MethodName, 0.5, "no value from the method's authors" },
    };

    [Theory]
    [MemberData(nameof(Expected))]
    public void Every_preset_of_a_method_has_its_official_threshold_with_its_source(string method, double value, string cited)
    {
        var factory = MethodRegistry.Get(method);
        foreach (var preset in new[] { MethodPreset.Paper, MethodPreset.Cpu })
        {
            var threshold = factory.DefaultConfig(preset).WithNumClasses(20).PseudoLabelThreshold;
            Assert.Equal(value, threshold.Value);
            Assert.Contains(cited, threshold.Source);
        }
    }

    [Fact]
    public void Every_registered_method_has_a_row_here_so_a_new_method_must_state_its_threshold()
    {
        var listed = Expected.Select(row => (string)row[0]).ToHashSet();
        // methods that WeakSeg registers (other tests register their own, whose configurations live in the test assembly)
        var builtIn = MethodRegistry.Names.Where(name =>
            MethodRegistry.Get(name).DefaultConfig(MethodPreset.Cpu).WithNumClasses(5).GetType().Assembly == typeof(MethodRegistry).Assembly);
        Assert.Equal([], builtIn.Where(name => !listed.Contains(name)).ToArray());
    }

    [Fact]
    public void The_threshold_is_not_a_configuration_field()
    {
        foreach (var name in Expected.Select(row => (string)row[0]))
        {
            var factory = MethodRegistry.Get(name);
            var json = factory.ConfigToJson(factory.DefaultConfig(MethodPreset.Cpu).WithNumClasses(5)).AsObject();
            Assert.False(json.ContainsKey("pseudo_label_threshold"), name);             // not in config.json, so not a training setting
            json["pseudo_label_threshold"] = 0.1;
            var e = Assert.Throws<WeakSegException>(() => factory.ConfigFromJson(json, "model.json"));
            Assert.Equal($"model.json: 'pseudo_label_threshold' of the '{name}' model configuration is computed from its other fields, not a " +
                "setting (give the pseudo-label threshold with --threshold)", e.Message);
        }
        // ToCo's follows its own background threshold, which a configuration may change.
        Assert.Equal(0.45, (ToCoConfig.Paper with { BackgroundThreshold = 0.45 }).PseudoLabelThreshold.Value);
    }

    [Fact]
    public void The_threshold_is_given_then_oracle_then_the_preset_and_only_the_oracle_consults_the_sweep()
    {
        var weakTr = MethodRegistry.Get(BuiltInMethods.WeakTr).DefaultConfig(MethodPreset.Cpu).WithNumClasses(3);
        double NoSweep() => throw new InvalidOperationException("the sweep (which reads masks) was consulted");
        Assert.Equal((0.3, "given: --threshold"), WsssPipeline.ChooseThreshold(0.3, oracle: true, NoSweep, weakTr));
        var preset = WsssPipeline.ChooseThreshold(null, oracle: false, NoSweep, weakTr);
        Assert.Equal(0.43, preset.Threshold);
        Assert.Equal("preset: WeakTr's official VOC pseudo labels: docs/Training.md, evaluation.py --t 43 (hustvl/WeakTr); no pixel label read", preset.Source);
        var oracle = WsssPipeline.ChooseThreshold(null, oracle: true, () => 0.25, weakTr);
        Assert.Equal(0.25, oracle.Threshold);
        Assert.StartsWith("oracle: ", oracle.Source);
    }
}
