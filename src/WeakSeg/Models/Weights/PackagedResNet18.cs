using System.Reflection;

namespace WeakSeg.Models.Weights;

/// <summary>
/// Where the ImageNet ResNet-18 of package <c>Microsoft.ML.DnnImageFeaturizer.ResNet18</c> is: the build copies its
/// <c>DnnImageModels/</c> folder next to the assemblies; the package folder recorded at build time is the fallback.
/// </summary>
public static class PackagedResNet18
{
    /// <summary>The package's network: input <c>Input247</c> [1, 3, 224, 224], output <c>Pooling395_Output_0</c> [1, 512, 1, 1].</summary>
    public const string ModelRelativePath = "DnnImageModels/ResNet18Onnx/ResNet18.onnx";

    /// <summary>The package's preprocessing graph: input <c>OriginalInput</c>, output <c>PreprocessedInput</c>.</summary>
    public const string PreprocessRelativePath = "DnnImageModels/ResNetPrepOnnx/ResNetPreprocess.onnx";

    /// <summary>Path of ResNet18.onnx; a <see cref="WeakSegException"/> naming the expected place when it is absent.</summary>
    public static string ModelPath => Find(ModelRelativePath);

    /// <summary>Path of ResNetPreprocess.onnx.</summary>
    public static string PreprocessPath => Find(PreprocessRelativePath);

    static string Find(string relative)
    {
        var beside = Path.Combine(AppContext.BaseDirectory, relative);
        if (File.Exists(beside)) return beside;
        var packageFolder = typeof(PackagedResNet18).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .FirstOrDefault(a => a.Key == "WeakSeg.ResNet18PackageFolder")?.Value;
        if (!string.IsNullOrEmpty(packageFolder))
        {
            var inPackage = Path.Combine(packageFolder, "tools", relative);
            if (File.Exists(inPackage)) return inPackage;
        }
        throw WeakSegException.ForFile(beside, "packaged ResNet-18 file not found (it comes with the NuGet package Microsoft.ML.DnnImageFeaturizer.ResNet18, restored by the build)");
    }
}
